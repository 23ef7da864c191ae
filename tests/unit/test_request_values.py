"""Request values of on-demand features, as the online path reads them: typed per
field, named when refused (serving/on_demand.py), and as HTTP sends them (JSON)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from skewless.errors import EntityRowsError
from skewless.http.convert import parse_request
from skewless.online.entries import encode_column
from skewless.serving.on_demand import column_entries, request_arrays
from skewless.types import (
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    to_arrow,
)


def test_request_values_take_python_and_numpy_numbers() -> None:
    got = request_arrays(
        {"i": Int64, "f": Float64, "b": Bool},
        {
            "i": [np.int64(3), 2**62, None],
            "f": [1, np.float32(0.5), 2**62],
            "b": [np.bool_(True), False, None],
        },
        3,
    )
    assert got["i"].to_pylist() == [3, 2**62, None]
    assert got["f"].to_pylist() == [1.0, 0.5, float(2**62)]
    assert got["b"].to_pylist() == [True, False, None]


def test_request_nan_is_null_as_pandas_writes_it() -> None:
    got = request_arrays({"f": Float64}, {"f": [math.nan, math.inf, -0.0]}, 3)["f"]
    assert got.to_pylist()[0] is None
    assert got.to_pylist()[1:] == [math.inf, -0.0]
    assert math.copysign(1.0, got.to_pylist()[2]) == -1.0


def test_request_float32_rounds_to_nearest_as_spark_casts() -> None:
    got = request_arrays({"f": Float32}, {"f": [16_777_217, 1e300]}, 2)["f"]
    assert got.type == pa.float32()
    assert got.to_pylist() == [16_777_216.0, math.inf]


@pytest.mark.parametrize(
    ("dtype", "value", "message"),
    [
        (Int64, True, "takes an int, got bool True"),
        (Int64, 1.5, "takes an int, got float 1.5"),
        (Int32, 2**31, "out of its range"),
        (Int64, 2**63, "out of its range"),
        (Float64, "1.5", "takes an int or a float, got str '1.5'"),
        (Float64, 10**400, "takes an int or a float"),
        (String, 5, "takes a str, got int 5"),
        (Bytes, "x", "takes bytes"),
        (Bool, 1, "takes a bool, got int 1"),
        (UnixTimestamp, 0, "takes a datetime, got int 0"),
    ],
)
def test_request_values_of_another_type_name_the_field_and_row(
    dtype: object, value: object, message: str
) -> None:
    with pytest.raises(EntityRowsError, match=message) as err:
        request_arrays({"x": dtype}, {"x": [None, value]}, 2)  # type: ignore[dict-item]
    assert (err.value.row, err.value.key) == (1, "x")
    assert "request field 'x'" in str(err.value)


def test_request_fields_missing_or_of_another_length_are_refused() -> None:
    with pytest.raises(EntityRowsError, match="missing request field 'x'"):
        request_arrays({"x": Int64}, {}, 1)
    with pytest.raises(EntityRowsError, match="has 1 values for 2 entity rows"):
        request_arrays({"x": Int64}, {"x": [1]}, 2)


def test_request_timestamps_naive_mean_utc() -> None:
    naive = datetime(2026, 3, 29, 1, 30)
    paris = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    got = request_arrays({"t": UnixTimestamp}, {"t": [naive, paris]}, 2)["t"]
    assert got.to_pylist() == [naive.replace(tzinfo=UTC)] * 2


def test_http_request_fields_are_columns_of_entities() -> None:
    body = {
        "features": ["odfv:x"],
        "entities": {
            "driver_id": [1, 2, 3],
            "at": ["2026-03-29T01:30:00Z", "2026-03-29T03:30:00.5+02:00", None],
            "blob": ["AAE=", None, ""],
            "f": ["NaN", "Infinity", 1.5],
        },
    }
    query = parse_request(json.dumps(body).encode())
    got = query.request_columns({"at": UnixTimestamp, "blob": Bytes, "f": Float64, "gone": Int64})
    assert got["at"] == [
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, 0, 500000, tzinfo=UTC),
        None,
    ]
    assert got["blob"] == [b"\x00\x01", None, b""]
    assert math.isnan(got["f"][0]) and got["f"][1:] == [math.inf, 1.5]
    assert "gone" not in got  # the service names a missing field


@pytest.mark.parametrize("text", ["2026-03-29", "20260329T013000Z", "2026-03-29T01:30:00"])
def test_http_request_timestamps_are_rfc3339_with_an_offset(text: str) -> None:
    body = {"features": ["odfv:x"], "entities": {"at": [text]}}
    query = parse_request(json.dumps(body).encode())
    with pytest.raises(EntityRowsError, match="is not an RFC 3339 time") as err:
        query.request_columns({"at": UnixTimestamp})
    assert (err.value.row, err.value.key) == (0, "at")


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (Float64, [1.5, None, math.nan, -0.0, math.inf]),
        (Float32, [1.5, None, -0.0]),
        (Int64, [1, None, -5, 2**63 - 1]),
        (Int32, [-3, None, 2**31 - 1]),
        (String, ["a", None, "ü", ""]),
        (Bool, [True, None, False]),
        (UnixTimestamp, [0, None, -1, 253402300799999999]),
        (Bytes, [b"\x00", None, b""]),
    ],
)
def test_computed_entries_value_by_value_equal_the_vectorized_encoder(
    dtype: object, values: list[object]
) -> None:
    column = pa.array(values, type=to_arrow(dtype))  # type: ignore[arg-type]
    few = column_entries(column, dtype)  # type: ignore[arg-type]
    assert few == encode_column(column, dtype)[1].tobytes()  # type: ignore[arg-type]
    many = pa.concat_arrays([column] * 20)  # past the value-by-value threshold
    assert column_entries(many, dtype) == few * 20  # type: ignore[arg-type]
