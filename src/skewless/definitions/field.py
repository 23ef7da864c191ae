"""Field: a named, typed column of a feature view's schema.

A field with an `expr` is a derived feature: its values are computed from other columns
of the source by an expression (skewless.expr; docs/expressions.md), and then stored,
served and retrieved like any other feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, PlainSerializer, field_validator
from pydantic import Field as Attribute

from skewless.definitions._base import Definition, check_name
from skewless.expr.builder import Expr, When
from skewless.expr.nodes import MAX_DEPTH, Call, Col, Lit, Node, depth, from_data, to_data
from skewless.types import DType, coerce_dtype

DTypeField = Annotated[
    DType,
    BeforeValidator(coerce_dtype),
    PlainSerializer(lambda t: t.name, return_type=str),
]


def coerce_expr(value: Any) -> Node | None:
    """Accept an expression as users build it (an Expr), its node, or its canonical data
    (as stored in the registry). The node is kept, never the Expr: an Expr's == builds an
    expression, so a model holding one could not be compared."""
    node: Node
    if value is None:
        return None
    if isinstance(value, Col | Lit | Call):
        node = value
    elif isinstance(value, Expr):
        node = value.node
    elif isinstance(value, When):
        raise ValueError("when(...) needs .otherwise(value) (or .end() for None)")
    elif isinstance(value, Mapping):
        node = from_data(value, "expr")
    else:
        raise _not_an_expression(value)
    nesting = depth(node)
    if nesting > MAX_DEPTH:
        raise ValueError(
            f"the expression nests {nesting} levels deep, over the {MAX_DEPTH} skewless "
            "takes: split it into several features, or sum a list with fewer levels"
        )
    return node


def _not_an_expression(value: Any) -> ValueError:
    return ValueError(
        f"expected an expression built with skewless.expr, such as col('km') / 60, got "
        f"{value!r} ({type(value).__name__}); a constant is lit({value!r})"
    )


ExprField = Annotated[
    Node | None,
    BeforeValidator(coerce_expr),
    PlainSerializer(lambda n: None if n is None else to_data(n)),
    # Absent rather than null when there is none: a stored field without an expression
    # keeps the form it had before expressions existed.
    Attribute(exclude_if=lambda n: n is None),
]


class Field(Definition):
    """`Field("trips_today", Int64)` or `Field(name="trips_today", dtype=Int64)`; a derived
    feature: `Field("speed_kmh", Float64, expr=col("km") / (col("minutes") / 60))`."""

    _kind: ClassVar[str] = "field"

    name: str
    dtype: DTypeField
    description: str = ""
    expr: ExprField = None

    def __init__(self, first: Any = None, /, dtype: Any = None, **data: Any) -> None:
        if dtype is not None:
            data["dtype"] = dtype
        super().__init__(first, **data)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "field name")

    @property
    def derived(self) -> bool:
        """Whether the field is computed by an expression rather than read as it is."""
        return self.expr is not None
