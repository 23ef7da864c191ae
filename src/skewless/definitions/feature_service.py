"""FeatureService: a named list of features a model consumes."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, field_validator, model_validator

from skewless.definitions._base import Definition, check_name
from skewless.definitions.feature_view import FeatureView, FeatureViewProjection
from skewless.definitions.on_demand import OnDemandFeatureView, OnDemandProjection


class ServiceFeatures(BaseModel, frozen=True, extra="forbid"):
    """What a service takes from one view: stored by view name, so a service's record
    does not embed (and does not change with) the view's definition."""

    view: str
    features: tuple[str, ...]


class FeatureService(Definition):
    """`FeatureService("driver_model_v1", features=[driver_stats, trips[["fare"]]])`;
    on-demand views and their projections are listed the same way."""

    _kind: ClassVar[str] = "feature service"

    kind: Literal["feature_service"] = "feature_service"
    name: str
    features: tuple[ServiceFeatures, ...]
    description: str = ""
    tags: dict[str, str] = {}
    owner: str = ""

    @model_validator(mode="before")
    @classmethod
    def _projections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        items = []
        for item in data.get("features", ()):
            if isinstance(item, FeatureView | OnDemandFeatureView):
                items.append(ServiceFeatures(view=item.name, features=item.feature_names))
            elif isinstance(item, FeatureViewProjection | OnDemandProjection):
                items.append(ServiceFeatures(view=item.view_name, features=item.features))
            else:
                items.append(item)
        return {**data, "features": items}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("features")
    @classmethod
    def _features(cls, v: tuple[ServiceFeatures, ...]) -> tuple[ServiceFeatures, ...]:
        if not v:
            raise ValueError("a feature service needs at least one feature view")
        refs = [f"{p.view}:{f}" for p in v for f in p.features]
        dupes = sorted({r for r in refs if refs.count(r) > 1})
        if dupes:
            raise ValueError(f"features listed twice: {dupes}")
        return v

    @property
    def refs(self) -> list[str]:
        return [f"{p.view}:{f}" for p in self.features for f in p.features]
