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
field and the row: an int (not a bool) for Int32 and Int64 (in range), an int or a float
for Float32 and Float64, a str, bytes, a bool, a datetime (naive means UTC) for
UnixTimestamp; None is a null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pyarrow as pa

from skewless.errors import EntityRowsError, ExpressionTypeError
from skewless.expr.check import EType
from skewless.feature_request import OnDemandRequest
from skewless.serving.expressions import Evaluator
from skewless.timeutil import utc_micros
from skewless.types import DType, ScalarType, to_arrow

_INT_RANGES: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_ACCEPTED: Final[dict[str, tuple[type, ...]]] = {
    "int32": (int,),
    "int64": (int,),
    "float32": (int, float),
    "float64": (int, float),
    "string": (str,),
    "bytes": (bytes,),
    "bool": (bool,),
    "unix_timestamp": (datetime,),
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
        evaluators = []
        for col in request.columns:
            expr = request.view.feature(col.feature).expr
            if expr is None:  # pragma: no cover - the definition refuses it
                raise ExpressionTypeError("has no expression", f"{request.name}:{col.feature}")
            evaluators.append(Evaluator(expr, types))
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
    accepted = _ACCEPTED[dtype.name]
    bounds = _INT_RANGES.get(dtype.name)
    for row, value in enumerate(values):
        if value is None:
            continue
        bad = not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted)
        if not bad and bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise EntityRowsError(
                f"request field '{name}' is {dtype.name}, and {value} is out of its range",
                row=row,
                key=name,
            )
        if bad:
            raise EntityRowsError(
                f"request field '{name}' is {dtype.name}, got {value!r} ({type(value).__name__})",
                row=row,
                key=name,
            )
    if dtype.name == "unix_timestamp":
        micros = [None if v is None else utc_micros(v) for v in values]
        return pa.array(micros, type=to_arrow(dtype))
    return pa.array(list(values), type=to_arrow(dtype))
