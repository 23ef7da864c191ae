"""Aggregation: a feature aggregated over a sliding time window of a view's events.

`Aggregation(column="fare", function="mean", time_window=timedelta(days=7))` in a
FeatureView's `aggregations` is the mean fare of the entity's events in the 7 days up to
each lookup's time. What a window covers, which events count and what each function
gives is one rule, rules/windows.py, that retrieval and serving both follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Final, Literal

from pydantic import field_validator, model_validator

from skewless.definitions._base import Definition, check_name
from skewless.timeutil import MAX_DURATION, MAX_DURATION_TEXT
from skewless.types import (
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    ScalarType,
    String,
    UnixTimestamp,
)

FunctionName = Literal["count", "sum", "mean", "min", "max", "stddev", "last", "count_distinct"]

_NUMBERS: Final = frozenset({Int32, Int64, Float32, Float64})
_INTEGERS: Final = frozenset({Int32, Int64})
_SCALARS: Final = frozenset({Int32, Int64, Float32, Float64, String, Bool, UnixTimestamp, Bytes})


@dataclass(frozen=True)
class WindowFunction:
    name: FunctionName
    inputs: frozenset[ScalarType]  # the input types it takes
    takes: str  # those types in words, for an error
    # the result for an empty window: 0 for the counts, None (null) for the others
    empty: int | None = None

    def output(self, dtype: ScalarType) -> ScalarType:
        """The result's type for an input of type `dtype` (one of `inputs`)."""
        match self.name:
            case "count" | "count_distinct":
                return Int64
            case "sum":
                return Int64 if dtype in _INTEGERS else Float64
            case "mean" | "stddev":
                return Float64
            case "min" | "max" | "last":
                return dtype


FUNCTIONS: Final[dict[str, WindowFunction]] = {
    f.name: f
    for f in (
        WindowFunction("count", _SCALARS, "any scalar type", empty=0),
        WindowFunction("sum", _NUMBERS, "numbers"),
        WindowFunction("mean", _NUMBERS, "numbers"),
        WindowFunction("stddev", _NUMBERS, "numbers"),
        WindowFunction(
            "min", _NUMBERS | {String, UnixTimestamp}, "numbers, strings and timestamps"
        ),
        WindowFunction(
            "max", _NUMBERS | {String, UnixTimestamp}, "numbers, strings and timestamps"
        ),
        WindowFunction("last", _SCALARS, "any scalar type"),
        WindowFunction(
            "count_distinct",
            frozenset({Int32, Int64, String, Bool, UnixTimestamp, Bytes}),
            "integers, strings, booleans, timestamps and bytes (not floats: cast or round "
            "them with a derived feature first)",
            empty=0,
        ),
    )
}

# Feast's and SQL's other spellings, with the name skewless uses.
ALIASES: Final = {"avg": "mean", "average": "mean", "std": "stddev", "stddev_samp": "stddev"}


def check_input(function: str, dtype: DType) -> str | None:
    """Why `function` cannot aggregate a column of type `dtype`, or None when it can."""
    spec = FUNCTIONS.get(function)
    if spec is None:
        return f"unknown function {function!r}"
    if not isinstance(dtype, ScalarType):
        return f"{function} takes {spec.takes}, not arrays ({dtype.name})"
    if dtype not in spec.inputs:
        return f"{function} takes {spec.takes}, not {dtype.name}"
    return None


def output_dtype(function: str, dtype: ScalarType) -> ScalarType:
    return FUNCTIONS[function].output(dtype)


_UNITS: Final = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000))


def window_text(window: timedelta) -> str:
    """A window as its default feature name spells it: 7d, 1h, 90m, 30s, 1500ms, 10us
    (the largest unit that divides it exactly)."""
    us = window // timedelta(microseconds=1)
    for unit, size in _UNITS:
        if us % size == 0:
            return f"{us // size}{unit}"
    if us % 1000 == 0:
        return f"{us // 1000}ms"
    return f"{us}us"


def default_name(column: str, function: str, window: timedelta) -> str:
    """An aggregation's feature name when none is given: `amount_sum_7d`."""
    return f"{column}_{function}_{window_text(window)}"


class Aggregation(Definition):
    """One windowed aggregate of a schema column; its feature is `name` (by default
    `<column>_<function>_<window>`, e.g. `fare_mean_7d`)."""

    _kind: ClassVar[str] = "aggregation"
    _positional: ClassVar[str] = "column"

    column: str
    function: str
    time_window: timedelta
    name: str = ""
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            column, function, window = (data.get(k) for k in ("column", "function", "time_window"))
            if (
                isinstance(column, str)
                and isinstance(function, str)
                and isinstance(window, timedelta)
            ):
                data = {
                    **data,
                    "name": default_name(column, ALIASES.get(function, function), window),
                }
        return data

    @field_validator("function")
    @classmethod
    def _function(cls, v: str) -> str:
        v = ALIASES.get(v, v)
        if v not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            raise ValueError(f"unknown aggregation function {v!r} (known: {known})")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "aggregation name")

    @field_validator("time_window")
    @classmethod
    def _window(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError(f"time_window must be positive, got {v}")
        if v > MAX_DURATION:
            raise ValueError(f"time_window must be at most {MAX_DURATION_TEXT}, got {v.days} days")
        return v
