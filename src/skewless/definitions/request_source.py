"""RequestSource: values sent with each request, for on-demand features."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator

from skewless.definitions._base import WithSchema, check_name
from skewless.definitions.field import Field
from skewless.types import ArrayType


class RequestSource(WithSchema):
    """`RequestSource("trip_request", schema=[Field("distance_km", Float64)])`.

    Offline, its fields are columns of the entity dataframe; online, they come with the
    lookup (`request_data=` in process, `request_columns` over gRPC, beside `entities`
    over HTTP). A missing value is None.
    """

    _kind: ClassVar[str] = "request source"

    kind: Literal["request_source"] = "request_source"
    name: str
    schema_: tuple[Field, ...]
    description: str = ""
    tags: dict[str, str] = {}
    owner: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: tuple[Field, ...]) -> tuple[Field, ...]:
        if not v:
            raise ValueError("a request source needs at least one field")
        names = [f.name for f in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema names a field twice: {dupes}")
        for f in v:
            if f.expr is not None:
                raise ValueError(f"request field '{f.name}' is sent, not computed: drop expr=")
            if isinstance(f.dtype, ArrayType):
                raise ValueError(
                    f"request field '{f.name}' is an array; request fields are scalars"
                )
        return v

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema_)
