"""Field: a named, typed column of a feature view's schema."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, PlainSerializer, field_validator

from skewless.definitions._base import Definition, check_name
from skewless.types import DType, coerce_dtype

DTypeField = Annotated[
    DType,
    BeforeValidator(coerce_dtype),
    PlainSerializer(lambda t: t.name, return_type=str),
]


class Field(Definition):
    """`Field("trips_today", Int64)` or `Field(name="trips_today", dtype=Int64)`."""

    _kind: ClassVar[str] = "field"

    name: str
    dtype: DTypeField
    description: str = ""

    def __init__(self, first: Any = None, /, dtype: Any = None, **data: Any) -> None:
        if dtype is not None:
            data["dtype"] = dtype
        super().__init__(first, **data)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "field name")
