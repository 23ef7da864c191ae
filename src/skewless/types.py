"""Feature value types.

A dtype is an immutable value with a canonical string form (`int64`, `array<float32>`),
which is what the registry stores and what fingerprints hash. Engine-specific mappings
(Arrow, pandas, Spark DDL) live here so that every part of skewless agrees on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

ScalarName = Literal[
    "int32", "int64", "float32", "float64", "string", "bool", "unix_timestamp", "bytes"
]


@dataclass(frozen=True, slots=True)
class ScalarType:
    name: ScalarName

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return _REPR[self.name]


@dataclass(frozen=True, slots=True)
class ArrayType:
    element: ScalarType

    @property
    def name(self) -> str:
        return f"array<{self.element.name}>"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Array({self.element!r})"


DType = ScalarType | ArrayType

Int32 = ScalarType("int32")
Int64 = ScalarType("int64")
Float32 = ScalarType("float32")
Float64 = ScalarType("float64")
String = ScalarType("string")
Bool = ScalarType("bool")
UnixTimestamp = ScalarType("unix_timestamp")
Bytes = ScalarType("bytes")

_SCALARS: dict[str, ScalarType] = {
    t.name: t for t in (Int32, Int64, Float32, Float64, String, Bool, UnixTimestamp, Bytes)
}
_REPR = {
    "int32": "Int32",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
    "string": "String",
    "bool": "Bool",
    "unix_timestamp": "UnixTimestamp",
    "bytes": "Bytes",
}


def Array(element: ScalarType) -> ArrayType:  # noqa: N802 - Feast-compatible spelling
    if not isinstance(element, ScalarType):
        raise TypeError(f"Array() takes a scalar type such as Int64, not {element!r}")
    return ArrayType(element)


def parse_dtype(text: str) -> DType:
    """Parse the canonical string form back into a dtype."""
    text = text.strip()
    if text.startswith("array<") and text.endswith(">"):
        return ArrayType(_scalar(text[len("array<") : -1]))
    return _scalar(text)


def _scalar(name: str) -> ScalarType:
    try:
        return _SCALARS[name]
    except KeyError:
        known = ", ".join(sorted(_SCALARS))
        raise ValueError(f"unknown dtype '{name}' (known: {known}, or array<scalar>)") from None


def coerce_dtype(value: Any) -> DType:
    """Accept a dtype object or its canonical string (as stored in the registry)."""
    if isinstance(value, ScalarType | ArrayType):
        return value
    if isinstance(value, str):
        return parse_dtype(value)
    raise ValueError(f"expected a skewless dtype such as Int64 or Array(Float32), got {value!r}")


# --- engine mappings ------------------------------------------------------------------

_ARROW: dict[str, pa.DataType] = {
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "unix_timestamp": pa.timestamp("us", tz="UTC"),
    "bytes": pa.binary(),
}

_SPARK_DDL: dict[str, str] = {
    "int32": "INT",
    "int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "string": "STRING",
    "bool": "BOOLEAN",
    "unix_timestamp": "TIMESTAMP",
    "bytes": "BINARY",
}

# Spark simpleString() of a column type -> the scalar it carries.
_FROM_SPARK: dict[str, ScalarType] = {
    "int": Int32,
    "bigint": Int64,
    "float": Float32,
    "double": Float64,
    "string": String,
    "boolean": Bool,
    "timestamp": UnixTimestamp,
    "timestamp_ntz": UnixTimestamp,
    "binary": Bytes,
}

# Lossless widenings accepted when a source column is narrower than the declared type.
_WIDENS_TO: dict[str, set[str]] = {
    "int32": {"int32"},
    "int64": {"int64", "int32"},
    "float32": {"float32"},
    "float64": {"float64", "float32"},
    "string": {"string"},
    "bool": {"bool"},
    "unix_timestamp": {"unix_timestamp"},
    "bytes": {"bytes"},
}


def to_arrow(dtype: DType) -> pa.DataType:
    if isinstance(dtype, ArrayType):
        return pa.list_(_ARROW[dtype.element.name])
    return _ARROW[dtype.name]


def to_spark_ddl(dtype: DType) -> str:
    if isinstance(dtype, ArrayType):
        return f"ARRAY<{_SPARK_DDL[dtype.element.name]}>"
    return _SPARK_DDL[dtype.name]


def from_spark_simple_string(type_string: str) -> DType | None:
    """The dtype a Spark column type carries, or None when skewless has no such type."""
    if type_string.startswith("array<") and type_string.endswith(">"):
        inner = _FROM_SPARK.get(type_string[len("array<") : -1])
        return ArrayType(inner) if inner else None
    return _FROM_SPARK.get(type_string)


def accepts(declared: DType, actual: DType) -> bool:
    """Whether a source column of type `actual` can feed a feature declared `declared`."""
    if isinstance(declared, ArrayType) or isinstance(actual, ArrayType):
        if not (isinstance(declared, ArrayType) and isinstance(actual, ArrayType)):
            return False
        return actual.element.name in _WIDENS_TO[declared.element.name]
    return actual.name in _WIDENS_TO[declared.name]


def pandas_dtype(dtype: DType) -> Any:
    """The pandas dtype a feature column gets in `to_pandas()`.

    Integers and booleans use pandas' nullable dtypes so that a missing value stays
    missing without turning the column into floats. Floats stay numpy floats, where a
    missing value is NaN (use `to_arrow()` to tell a null from a stored NaN).
    """
    if isinstance(dtype, ArrayType):
        return object
    return {
        "int32": pd.Int32Dtype(),
        "int64": pd.Int64Dtype(),
        "float32": "float32",
        "float64": "float64",
        "string": object,
        "bool": pd.BooleanDtype(),
        "unix_timestamp": pd.DatetimeTZDtype(unit="us", tz="UTC"),  # type: ignore[arg-type]
        "bytes": object,
    }[dtype.name]
