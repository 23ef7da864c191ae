"""FeatureView: typed features of one or more entities, read from one source."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field as Attribute
from pydantic import field_validator, model_validator

from skewless.definitions._base import Definition, WithSchema, check_name
from skewless.definitions.aggregation import Aggregation, check_input, output_dtype
from skewless.definitions.entity import Entity
from skewless.definitions.field import Field
from skewless.definitions.schedule import Schedule
from skewless.definitions.sources import Source
from skewless.errors import DefinitionError, ExpressionTypeError, FeatureNotFoundError
from skewless.expr.check import check_zone
from skewless.expr.functions import TIME_PARTS, check_shape, render
from skewless.expr.nodes import Call, columns, walk
from skewless.timeutil import MAX_DURATION, MAX_DURATION_TEXT
from skewless.types import ScalarType


def _absent_when_none() -> Any:
    return Attribute(exclude_if=lambda v: v is None)


class FeatureView(WithSchema):
    """A group of features sharing entities, a source and a time-to-live.

    `schema` lists the features. It may also list the join keys (as Feast allows), which
    pins their types; join keys are never features. With a `ttl`, a feature row is
    usable for an entity row at time t only if `t - ttl <= event_ts <= t`.

    A feature with an `expr` is derived: computed from columns of the source (stored
    features, join keys, the timestamp field or any other column; never another derived
    feature), then stored and served like the others (docs/expressions.md). Its types are
    checked against the source at plan, when the source's types are known.

    `materialization` is the view's Schedule for `skewless schedule run` (without one, the
    project's default in feature_store.yaml applies); `expected_freshness` is how old its
    last successful materialization may get before the view is reported stale (without
    it, about two schedule intervals). Both are metadata: changing them never asks for
    re-materialization.
    """

    _kind: ClassVar[str] = "feature view"

    kind: Literal["feature_view"] = "feature_view"
    name: str
    entities: tuple[Entity, ...]
    schema_: tuple[Field, ...] = ()
    source: Source
    ttl: timedelta | None = None
    aggregations: Annotated[tuple[Aggregation, ...], Attribute(exclude_if=lambda a: not a)] = ()
    # absent from the stored form when unset, as aggregations: a view without keeps its form
    materialization: Annotated[Schedule | None, _absent_when_none()] = None
    expected_freshness: Annotated[timedelta | None, _absent_when_none()] = None
    online: bool = True
    description: str = ""
    tags: dict[str, str] = {}
    owner: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("entities")
    @classmethod
    def _entities(cls, v: tuple[Entity, ...]) -> tuple[Entity, ...]:
        if not v:
            raise ValueError("a feature view needs at least one entity")
        names = [e.name for e in v]
        if len(set(names)) != len(names):
            raise ValueError(f"entities repeat a name: {names}")
        keys = [k for e in v for k in e.join_keys]
        if len(set(keys)) != len(keys):
            raise ValueError(f"the entities' join keys overlap: {keys}")
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError(
                f"ttl must be positive or None (no expiry), got {v} (Feast's ttl of 0 for "
                "no expiry is ttl=None here)"
            )
        if v is not None and v > MAX_DURATION:
            raise ValueError(
                f"ttl must be at most {MAX_DURATION_TEXT}, the span of the times Spark "
                f"holds (years 1 to 9999), got {v.days} days; None means no expiry"
            )
        return v

    @field_validator("expected_freshness")
    @classmethod
    def _expected_freshness(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError(f"expected_freshness must be positive or None, got {v}")
        if v is not None and v > MAX_DURATION:
            raise ValueError(
                f"expected_freshness must be at most {MAX_DURATION_TEXT}, got {v.days} days"
            )
        return v

    @model_validator(mode="after")
    def _schema(self) -> FeatureView:
        names = [f.name for f in self.schema_]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema names a field twice: {dupes}")
        if not self.stored:
            if self.aggregations:
                raise ValueError(
                    "schema declares no column to aggregate (only join keys): list the "
                    "aggregations' input columns, e.g. Field('fare', Float64)"
                )
            raise ValueError("schema declares no features (only join keys)")
        reserved = {self.source.timestamp_field, self.source.created_timestamp_column}
        clash = sorted(f.name for f in self.stored if f.name in reserved)
        if clash:
            raise ValueError(f"features {clash} are the source's timestamp columns")
        for f in self.schema_:
            if f.expr is not None:
                self._check_derived(f)
        if self.aggregations:
            self._check_aggregations()
        return self

    def _check_aggregations(self) -> None:
        def error(detail: str, field: str) -> DefinitionError:
            return DefinitionError(
                detail, object_kind=self._kind, object_name=self.name, field=field
            )

        if self.ttl is not None:
            raise error(
                "a view with aggregations has no ttl: each aggregation's time_window "
                "bounds the events it reads (drop ttl=)",
                "ttl",
            )
        inputs = {f.name: f for f in self.stored}
        taken = {*self.join_keys, *(f.name for f in self.schema_)}
        taken |= {self.source.timestamp_field, self.source.created_timestamp_column or ""}
        seen: set[str] = set()
        for i, agg in enumerate(self.aggregations):
            at = f"aggregations[{i}]"
            if agg.name in seen:
                raise error(f"two aggregations are named {agg.name!r}", f"{at}.name")
            seen.add(agg.name)
            if agg.name in taken:
                raise error(
                    f"aggregation name {agg.name!r} is a column of the view (a join key, a "
                    "schema field or a timestamp column): name it otherwise (name=...)",
                    f"{at}.name",
                )
            field = inputs.get(agg.column)
            if field is None:
                where = "a join key" if agg.column in self.join_keys else "not in the schema"
                raise error(
                    f"aggregation {agg.name!r} reads column {agg.column!r}, which is {where}:"
                    f" declare it in the schema, e.g. Field({agg.column!r}, Float64)",
                    f"{at}.column",
                )
            problem = check_input(agg.function, field.dtype)
            if problem is not None:
                raise error(f"aggregation {agg.name!r} of {agg.column!r}: {problem}", at)

    def _check_derived(self, field: Field) -> None:
        """What can be checked of a derived feature before its source's types are known:
        it is no join key, its calls are well formed, and it reads no derived feature."""

        def error(detail: str) -> DefinitionError:
            return DefinitionError(
                detail,
                object_kind=self._kind,
                object_name=self.name,
                field=f"schema.{field.name}",
            )

        assert field.expr is not None
        if field.name in self.join_keys:
            raise error(
                f"join key '{field.name}' has an expression: a join key is read from the "
                "source as it is (derive a feature instead)"
            )
        for node in walk(field.expr):
            if not isinstance(node, Call):
                continue
            problem = check_shape(node)
            if problem is not None:
                raise error(f"{render(node)}: {problem}")
            if node.fn in TIME_PARTS:
                try:
                    check_zone(node)
                except ExpressionTypeError as exc:
                    raise error(str(exc)) from None
        derived = {f.name for f in self.derived}
        for name in columns(field.expr):
            if name == field.name:
                raise error(f"the expression reads the feature itself (col('{name}'))")
            if name in derived:
                raise error(
                    f"the expression reads col('{name}'), another derived feature of the "
                    "view: a derived feature reads source columns only (repeat the other "
                    "feature's expression instead)"
                )

    # --- derived views of the definition ---------------------------------------------

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entities for k in e.join_keys)

    @property
    def stored(self) -> tuple[Field, ...]:
        """The schema's fields that are no join key: what each event row holds, read
        from the source (or derived) and stored. They are the features of a plain view
        and the inputs of a view with aggregations."""
        keys = set(self.join_keys)
        return tuple(f for f in self.schema_ if f.name not in keys)

    @property
    def stored_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.stored)

    @property
    def features(self) -> tuple[Field, ...]:
        """What the view serves: its stored fields, or its aggregations' results."""
        if not self.aggregations:
            return self.stored
        dtypes = {f.name: f.dtype for f in self.stored}
        out: list[Field] = []
        for agg in self.aggregations:
            dtype = dtypes[agg.column]
            assert isinstance(dtype, ScalarType)  # checked by the validator
            out.append(
                Field(agg.name, output_dtype(agg.function, dtype), description=agg.description)
            )
        return tuple(out)

    @property
    def derived(self) -> tuple[Field, ...]:
        """The stored fields computed by an expression (Field(..., expr=...)), in schema
        order."""
        return tuple(f for f in self.stored if f.expr is not None)

    @property
    def key_fields(self) -> tuple[Field, ...]:
        """Join keys whose type the schema pins."""
        keys = set(self.join_keys)
        return tuple(f for f in self.schema_ if f.name in keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def aggregation(self, name: str) -> Aggregation:
        """The aggregation whose feature is `name`."""
        for agg in self.aggregations:
            if agg.name == name:
                return agg
        raise FeatureNotFoundError(self.name, name, self.feature_names)

    def feature(self, name: str) -> Field:
        for f in self.features:
            if f.name == name:
                return f
        raise FeatureNotFoundError(self.name, name, self.feature_names)

    def __getitem__(self, features: str | list[str] | tuple[str, ...]) -> FeatureViewProjection:
        """`view[["a", "b"]]`: a subset of the view's features, for a FeatureService."""
        if isinstance(features, str):
            features = [features]
        for f in features:
            self.feature(f)
        return FeatureViewProjection(view=self, features=tuple(features))

    def __hash__(self) -> int:
        return hash((self.kind, self.name))


class FeatureViewProjection(Definition):
    """Some features of one view, in the order they were asked for."""

    _kind: ClassVar[str] = "projection"
    _positional: ClassVar[str] = "view"

    view: FeatureView
    features: tuple[str, ...]

    @property
    def view_name(self) -> str:
        return self.view.name
