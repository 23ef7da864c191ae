"""Feature value types.

A dtype is an immutable value with a canonical string form (`int64`, `array<float32>`),
which is what the registry stores and what fingerprints hash. ENGINES, the one table of
how each type is spelled by Arrow, Spark, Delta, pandas, the gRPC contract (and so the
online codec, which stores the contract's bytes) and Python, lives here, so that every
part of skewless agrees on them.
"""

from __future__ import annotations

import sys
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
#
# The one table of how each scalar type is spelled by every engine skewless speaks; every
# other module derives its mappings from it (arrays are lists of their element's type).


@dataclass(frozen=True, slots=True)
class EngineTypes:
    arrow: pa.DataType
    spark: str  # Spark SQL DDL
    spark_read: tuple[str, ...]  # Spark simpleString()s of columns read as this type
    delta: tuple[str, ...]  # Delta log type names of columns read as this type
    pandas: Any  # the dtype to_pandas() gives a feature of this type
    proto: str  # the skewless.serving.v1.Value field of a scalar of this type
    proto_list: str  # and of an array of it
    zero: Any  # protobuf's default value of that field
    key_python: type  # the Python type a join key of this type takes (a bool is no int)
    widens_from: tuple[str, ...] = ()  # narrower source types read losslessly as this one


ENGINES: dict[str, EngineTypes] = {
    "int32": EngineTypes(
        pa.int32(), "INT", ("int",), ("integer",), pd.Int32Dtype(),
        "int32_value", "int32_list_value", 0, int,
    ),
    "int64": EngineTypes(
        pa.int64(), "BIGINT", ("bigint",), ("long",), pd.Int64Dtype(),
        "int64_value", "int64_list_value", 0, int, ("int32",),
    ),
    "float32": EngineTypes(
        pa.float32(), "FLOAT", ("float",), ("float",), "float32",
        "float_value", "float_list_value", 0.0, float,
    ),
    "float64": EngineTypes(
        pa.float64(), "DOUBLE", ("double",), ("double",), "float64",
        "double_value", "double_list_value", 0.0, float, ("float32",),
    ),
    "string": EngineTypes(
        pa.string(), "STRING", ("string",), ("string",), object,
        "string_value", "string_list_value", "", str,
    ),
    "bool": EngineTypes(
        pa.bool_(), "BOOLEAN", ("boolean",), ("boolean",), pd.BooleanDtype(),
        "bool_value", "bool_list_value", False, bool,
    ),
    "unix_timestamp": EngineTypes(
        pa.timestamp("us", tz="UTC"), "TIMESTAMP", ("timestamp", "timestamp_ntz"),
        ("timestamp", "timestamp_ntz"), pd.DatetimeTZDtype(unit="us", tz="UTC"),  # type: ignore[arg-type]
        "unix_timestamp_value", "unix_timestamp_list_value", 0, int,
    ),
    "bytes": EngineTypes(
        pa.binary(), "BINARY", ("binary",), ("binary",), object,
        "bytes_value", "bytes_list_value", b"", bytes,
    ),
}  # fmt: skip

_FROM_SPARK: dict[str, ScalarType] = {
    name: _SCALARS[t] for t, e in ENGINES.items() for name in e.spark_read
}
_FROM_DELTA: dict[str, ScalarType] = {
    name: _SCALARS[t] for t, e in ENGINES.items() for name in e.delta
}
# Arrow types read as a scalar: each type's own, and Arrow's 64-bit-offset variants.
_FROM_ARROW: dict[pa.DataType, ScalarType] = {
    **{e.arrow: _SCALARS[t] for t, e in ENGINES.items() if t != "unix_timestamp"},
    pa.large_string(): String,
    pa.large_binary(): Bytes,
}

# The pandas dtypes that keep nulls without turning integers or booleans into floats: what
# Arrow's to_pandas() is told to use (types_mapper) for such columns.
NULLABLE_PANDAS: dict[pa.DataType, Any] = {
    e.arrow: e.pandas
    for e in ENGINES.values()
    if isinstance(e.pandas, pd.Int32Dtype | pd.Int64Dtype | pd.BooleanDtype)
}


def to_arrow(dtype: DType) -> pa.DataType:
    if isinstance(dtype, ArrayType):
        return pa.list_(ENGINES[dtype.element.name].arrow)
    return ENGINES[dtype.name].arrow


def to_spark_ddl(dtype: DType) -> str:
    if isinstance(dtype, ArrayType):
        return f"ARRAY<{ENGINES[dtype.element.name].spark}>"
    return ENGINES[dtype.name].spark


def from_arrow_scalar(t: pa.DataType) -> ScalarType | None:
    """The scalar an Arrow column type (other than a timestamp) carries, or None."""
    return _FROM_ARROW.get(t)


def from_delta_scalar(name: str) -> ScalarType | None:
    """The scalar a Delta log's primitive type name carries, or None."""
    return _FROM_DELTA.get(name)


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
        declared, actual = declared.element, actual.element
    return actual == declared or actual.name in ENGINES[declared.name].widens_from


def pandas_dtype(dtype: DType) -> Any:
    """The pandas dtype a feature column gets in `to_pandas()`.

    Integers and booleans use pandas' nullable dtypes so that a missing value stays
    missing without turning the column into floats. Floats stay numpy floats, where a
    missing value is NaN (use `to_arrow()` to tell a null from a stored NaN).
    """
    if isinstance(dtype, ArrayType):
        return object
    return ENGINES[dtype.name].pandas


def __getattr__(name: str) -> object:
    # Feast's types skewless lacks: `from skewless.types import Map` says what to use.
    from skewless.feast_names import TYPES, advice, missing_name, refusal  # noqa: PLC0415 - only on a miss

    detail = advice(TYPES, name, missing_name(f"skewless.types.{name}"))
    if detail is None:
        raise AttributeError(f"module 'skewless.types' has no attribute {name!r}")
    raise refusal(name, detail, sys._getframe(1))
