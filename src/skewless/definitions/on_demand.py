"""OnDemandFeatureView: features computed at request time from request values and from
other views' features, by expressions (docs/expressions.md).

Offline they are computed by Spark after the point-in-time join, from the entity
dataframe's request columns and the joined features; online by the vectorized evaluator,
from the request values and the features looked up. Nothing is materialized.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Discriminator, field_validator, model_validator

from skewless.definitions._base import Definition, WithSchema, check_name
from skewless.definitions.feature_view import FeatureView, FeatureViewProjection
from skewless.definitions.field import DTypeField, Field
from skewless.definitions.request_source import RequestSource
from skewless.errors import DefinitionError, ExpressionTypeError, FeatureNotFoundError
from skewless.expr.check import EType, check_feature
from skewless.expr.nodes import Node, columns
from skewless.types import DType


class InputFeature(BaseModel, frozen=True, extra="forbid"):
    """A feature of a source view, with the type it had when the on-demand view was
    defined (the repo check compares it with the view's)."""

    name: str
    dtype: DTypeField


class ViewInput(BaseModel, frozen=True, extra="forbid"):
    """The features of one feature view an on-demand view may read, by view name (so the
    record does not embed the view's definition)."""

    kind: Literal["feature_view"] = "feature_view"
    view: str
    features: tuple[InputFeature, ...]


OnDemandSource = Annotated[ViewInput | RequestSource, Discriminator("kind")]


class OnDemandFeatureView(WithSchema):
    """`OnDemandFeatureView("trip_ratios", sources=[driver_stats, trip_request],
    schema=[Field("fare_per_km", Float64, expr=col("fare") / col("distance_km"))])`.

    `col(name)` names a feature of a source view or a field of a request source; each
    name must come from one source only (pick a view's features with `view[[...]]`).
    """

    _kind: ClassVar[str] = "on-demand feature view"

    kind: Literal["on_demand_feature_view"] = "on_demand_feature_view"
    name: str
    sources: tuple[OnDemandSource, ...]
    schema_: tuple[Field, ...]
    description: str = ""
    tags: dict[str, str] = {}
    owner: str = ""

    @model_validator(mode="before")
    @classmethod
    def _sources_as_inputs(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        sources = data.get("sources")
        if isinstance(sources, list | tuple):
            data["sources"] = [_source(s) for s in sources]
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: tuple[OnDemandSource, ...]) -> tuple[OnDemandSource, ...]:
        if not v:
            raise ValueError("an on-demand feature view needs at least one source")
        names = [s.view if isinstance(s, ViewInput) else s.name for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sources name {dupes} twice (list each source once)")
        return v

    @model_validator(mode="after")
    def _schema(self) -> OnDemandFeatureView:
        names = [f.name for f in self.schema_]
        if not names:
            raise ValueError("schema declares no features")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema names a field twice: {dupes}")
        inputs = self.input_types  # raises on a name two sources give
        for f in self.schema_:
            if f.expr is None:
                raise self._error(
                    f.name, "every feature of an on-demand view is computed: give it expr="
                )
            try:
                check_feature(f.expr, f.dtype, inputs)
            except ExpressionTypeError as exc:
                raise self._error(f.name, str(exc)) from None
        return self

    def _error(self, feature: str | None, detail: str) -> DefinitionError:
        return DefinitionError(
            detail,
            object_kind=self._kind,
            object_name=self.name,
            field=f"schema.{feature}" if feature else "sources",
        )

    # --- derived views of the definition ---------------------------------------------

    @property
    def view_inputs(self) -> tuple[ViewInput, ...]:
        return tuple(s for s in self.sources if isinstance(s, ViewInput))

    @property
    def request_sources(self) -> tuple[RequestSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, RequestSource))

    @property
    def input_types(self) -> dict[str, EType]:
        """Every name `col()` may use, with its type."""
        found: dict[str, tuple[str, DType]] = {}
        for source in self.sources:
            if isinstance(source, ViewInput):
                where = f"feature view '{source.view}'"
                fields = [(f.name, f.dtype) for f in source.features]
            else:
                where = f"request source '{source.name}'"
                fields = [(f.name, f.dtype) for f in source.schema_]
            for name, dtype in fields:
                if name in found:
                    raise self._error(
                        None,
                        f"input '{name}' is given by {found[name][0]} and by {where}: keep one "
                        "(select a view's features with view[['a', 'b']])",
                    )
                found[name] = (where, dtype)
        return {name: dtype for name, (_, dtype) in found.items()}

    @property
    def features(self) -> tuple[Field, ...]:
        return self.schema_

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema_)

    def feature(self, name: str) -> Field:
        for f in self.schema_:
            if f.name == name:
                return f
        raise FeatureNotFoundError(self.name, name, self.feature_names)

    def expression(self, name: str) -> Node:
        """The expression computing feature `name` (every feature here has one)."""
        expr = self.feature(name).expr
        if expr is None:  # pragma: no cover - _schema refuses it
            raise AssertionError(f"{self.name}:{name} has no expression")
        return expr

    def inputs_of(self, features: tuple[str, ...]) -> InputsNeeded:
        """The view features and request fields that computing `features` reads."""
        used: dict[str, None] = {}
        for name in features:
            expr = self.feature(name).expr
            if expr is not None:
                used.update(dict.fromkeys(columns(expr)))
        views: dict[str, tuple[str, ...]] = {}
        for source in self.view_inputs:
            wanted = tuple(f.name for f in source.features if f.name in used)
            if wanted:
                views[source.view] = wanted
        request = tuple(f.name for s in self.request_sources for f in s.schema_ if f.name in used)
        return InputsNeeded(views, request)

    def __getitem__(self, features: str | list[str] | tuple[str, ...]) -> OnDemandProjection:
        """`view[["a", "b"]]`: a subset of the view's features, for a FeatureService."""
        if isinstance(features, str):
            features = [features]
        for f in features:
            self.feature(f)
        return OnDemandProjection(view=self, features=tuple(features))

    def __hash__(self) -> int:
        return hash((self.kind, self.name))


@dataclass(frozen=True)
class InputsNeeded:
    views: Mapping[str, tuple[str, ...]]  # view name -> its features read, in view order
    request: tuple[str, ...]  # request fields read


class OnDemandProjection(Definition):
    """Some features of one on-demand view, in the order they were asked for."""

    _kind: ClassVar[str] = "projection"
    _positional: ClassVar[str] = "view"

    view: OnDemandFeatureView
    features: tuple[str, ...]

    @property
    def view_name(self) -> str:
        return self.view.name


def _source(source: object) -> object:
    """A FeatureView or a projection of one as the ViewInput it stands for."""
    match source:
        case FeatureView():
            return ViewInput(
                view=source.name,
                features=tuple(InputFeature(name=f.name, dtype=f.dtype) for f in source.features),
            )
        case FeatureViewProjection():
            return ViewInput(
                view=source.view.name,
                features=tuple(
                    InputFeature(name=n, dtype=source.view.feature(n).dtype)
                    for n in source.features
                ),
            )
    return source
