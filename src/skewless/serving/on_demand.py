"""On-demand features online: computed for each lookup by the vectorized evaluator
(serving/expressions.py), from the request values and the features looked up.

A lookup plan holds one OnDemandPlan per on-demand view asked for: its expressions
compiled once, and where each input is found (a hidden column of a view's answer, see
feature_request.hidden_name, or a request field). Features that are not found, or older
than their view's ttl, are None inputs, as the training set's point-in-time join gives
them. An on-demand value's status is PRESENT (its value may still be None) and it has
no event time.

Request values arrive as Python values (in process, and decoded from a gRPC or HTTP
request) and are checked against the request field's declared type here, naming the
field and the row: an integer (not a bool; numpy's too) for Int32 and Int64, in range; a
number for Float32 and Float64, where NaN is a null, as pandas writes it into a
training set's entity rows; a str, bytes, a bool, a datetime (naive means UTC) for
UnixTimestamp; None is a null.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa

from skewless.errors import EntityRowsError
from skewless.expr.check import EType
from skewless.feature_request import OnDemandRequest
from skewless.online.entries import encode_column, encode_entry
from skewless.serving.expressions import Evaluator
from skewless.timeutil import utc_micros
from skewless.types import DType, ScalarType, to_arrow

_INT_RANGES: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _integer(value: Any) -> int | None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _real(value: Any) -> float | None:
    """A float field's value as a float; NaN is None, as pandas writes a NaN (so a
    training set's request column holds a null where an online request held NaN)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past the float range
        return None
    return number


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _binary(value: Any) -> bytes | None:
    return bytes(value) if isinstance(value, bytes) else None


def _flag(value: Any) -> bool | None:
    return bool(value) if isinstance(value, bool | np.bool_) else None


def _instant(value: Any) -> int | None:
    return utc_micros(value) if isinstance(value, datetime) else None


# How a request value of each type is read: None for a value of another type.
_READ: Final[dict[str, Callable[[Any], Any]]] = {
    "int32": _integer,
    "int64": _integer,
    "float32": _real,
    "float64": _real,
    "string": _text,
    "bytes": _binary,
    "bool": _flag,
    "unix_timestamp": _instant,
}
_EXPECTED: Final = {
    "int32": "an int",
    "int64": "an int",
    "float32": "an int or a float",
    "float64": "an int or a float",
    "string": "a str",
    "bytes": "bytes",
    "bool": "a bool",
    "unix_timestamp": "a datetime",
}


@dataclass(frozen=True)
class OnDemandPlan:
    """One on-demand view of a lookup."""

    request: OnDemandRequest
    outputs: tuple[str, ...]  # output names, in the view's request order
    dtypes: tuple[DType, ...]
    evaluators: tuple[Evaluator, ...]
    holders: tuple[tuple[str, str], ...]  # (input name, the column that holds it)
    input_types: Mapping[str, EType]

    @classmethod
    def of(cls, request: OnDemandRequest) -> OnDemandPlan:
        types = request.view.input_types
        evaluators = [Evaluator(request.view.expression(c.feature), types) for c in request.columns]
        return cls(
            request,
            tuple(c.output for c in request.columns),
            tuple(c.dtype for c in request.columns),
            tuple(evaluators),
            request.inputs,
            types,
        )

    def compute(
        self, held: Mapping[str, Sequence[Any]], request: Mapping[str, pa.Array], rows: int
    ) -> list[pa.Array]:
        """Each output's values for `rows` rows: `held` maps hidden columns to their
        looked-up values (timestamps in microseconds), `request` request fields to
        request_arrays()' columns."""
        inputs: dict[str, pa.Array] = {}
        for name, holder in self.holders:
            if holder in held:
                dtype = self.input_types[name]
                inputs[name] = pa.array(held[holder], type=to_arrow(dtype))  # type: ignore[arg-type]
            else:
                inputs[name] = request[holder]
        out = []
        for evaluate, dtype in zip(self.evaluators, self.dtypes, strict=True):
            result = evaluate(inputs, rows)
            target = to_arrow(dtype)
            out.append(result if result.type == target else result.cast(target))
        return out


# Up to this many rows, an on-demand column's entries are written value by value: the
# vectorized encoder's fixed cost (~150 us) is most of a one-entity lookup's extra time
# (benchmarks/on_demand_latency.py).
_FEW_ROWS: Final = 64


def column_entries(column: pa.Array, dtype: DType) -> bytes:
    """A computed column as the gRPC response's FeatureColumn.values carries it."""
    if len(column) > _FEW_ROWS or not isinstance(dtype, ScalarType):
        return bytes(encode_column(column, dtype)[1].tobytes())
    if dtype.name == "unix_timestamp":
        column = column.cast(pa.int64())
    return b"".join(encode_entry(v, dtype) for v in column.to_pylist())


def request_arrays(
    fields: Mapping[str, DType], columns: Mapping[str, Sequence[Any]], rows: int
) -> dict[str, pa.Array]:
    """Each request field's values (one per entity row) as an Arrow column of its
    declared type; EntityRowsError naming the field and the row for a missing field or
    a value of another type."""
    arrays: dict[str, pa.Array] = {}
    for name, dtype in fields.items():
        values = columns.get(name)
        if values is None:
            raise EntityRowsError(
                f"missing request field '{name}' (an on-demand feature reads it): send it with "
                "the request values",
                key=name,
            )
        if len(values) != rows:
            raise EntityRowsError(
                f"request field '{name}' has {len(values)} values for {rows} entity rows",
                key=name,
            )
        arrays[name] = _typed(name, dtype, values)
    return arrays


def _typed(name: str, dtype: DType, values: Sequence[Any]) -> pa.Array:
    if not isinstance(dtype, ScalarType):  # pragma: no cover - RequestSource refuses arrays
        raise EntityRowsError(f"request field '{name}' is an array", key=name)
    read = _READ[dtype.name]
    bounds = _INT_RANGES.get(dtype.name)
    out: list[Any] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        got = read(value)
        if got is None:
            raise EntityRowsError(
                f"request field '{name}' is {dtype.name} and takes {_EXPECTED[dtype.name]}, "
                f"got {type(value).__name__} {_shown(value)}",
                row=row,
                key=name,
            )
        if bounds is not None and not bounds[0] <= got <= bounds[1]:
            raise EntityRowsError(
                f"request field '{name}' is {dtype.name}, and {got} is out of its range",
                row=row,
                key=name,
            )
        out.append(None if isinstance(got, float) and math.isnan(got) else got)
    # floats arrive as Python floats, which Arrow narrows to float32 to the nearest
    return pa.array(out, type=to_arrow(dtype))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
