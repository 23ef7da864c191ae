"""Online responses are typed like training sets: for a feature of every type (scalars
and arrays), with values, nulls, null array elements, NaN and empty arrays,
`get_online_features(...).to_pandas()` (in process and from OnlineClient) has the dtypes
and values `get_historical_features(...).to_pandas()` has."""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.client import OnlineClient
from skewless.grpc import running_server
from skewless.types import (
    Array,
    ArrayType,
    Bool,
    Bytes,
    DType,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
    pandas_dtype,
    to_arrow,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
T0 = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
SCALARS: list[DType] = [Int32, Int64, Float32, Float64, String, Bool, UnixTimestamp, Bytes]
FEATURES: dict[str, DType] = {f"f_{t.name}": t for t in SCALARS}
FEATURES |= {f"f_array_{t.name}": Array(t) for t in SCALARS}  # type: ignore[arg-type]

# Per scalar type two values, among them those a conversion could get wrong: extremes,
# NaN, -0.0, empty strings and bytes, a timestamp with microseconds and the epoch.
VALUES: dict[str, list[Any]] = {
    "int32": [-(2**31), 7],
    "int64": [2**63 - 1, -1],  # not exact as a float64
    "float32": [0.1, float("nan")],
    "float64": [float("nan"), -0.0],
    "string": ["é", ""],
    "bool": [True, False],
    "unix_timestamp": [T0 - timedelta(days=400), datetime(1970, 1, 1, tzinfo=UTC)],
    "bytes": [b"\x00\xff", b""],
}


def feature_values(row: int) -> dict[str, Any]:
    """Row 0: first values, arrays with a null element; row 1: every feature null;
    row 2: second values, empty arrays."""
    out: dict[str, Any] = {}
    for name, dtype in FEATURES.items():
        is_array = isinstance(dtype, ArrayType)
        scalar = dtype.element if isinstance(dtype, ArrayType) else dtype
        first, second = VALUES[scalar.name]
        out[name] = [
            [first, None, second] if is_array else first,
            None,
            [] if is_array else second,
        ][row]
    return out


DRIVERS = [1, 2, 3]  # rows 0, 1, 2 above
LOOKED_UP = [1, 2, 3, 99, 1]  # 99: not found online, no row offline


def defs() -> str:
    fields = ",\n        ".join(f'Field("{name}", {dtype!r})' for name, dtype in FEATURES.items())
    return textwrap.dedent(
        """
        from skewless import *

        driver = Entity("driver", join_keys=["driver_id"])
        every = FeatureView(
            "every",
            entities=[driver],
            schema=[
                Field("driver_id", Int64),
                {fields},
            ],
            source=FileSource("data/every.parquet", timestamp_field="ts"),
        )
        """
    ).replace("{fields}", fields)


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, spark: SparkSession, redis_url: str
) -> FeatureStore:
    repo = tmp_path_factory.mktemp("online_dtypes")
    (repo / "data").mkdir()
    (repo / "feature_store.yaml").write_text(
        f"project: dtypes\nonline_store:\n  type: redis\n  url: {redis_url}\n"
    )
    (repo / "defs.py").write_text(defs())
    schema = pa.schema(
        [("driver_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC"))]
        + [(name, to_arrow(dtype)) for name, dtype in FEATURES.items()]
    )
    rows = [{"driver_id": d, "ts": T0, **feature_values(i)} for i, d in enumerate(DRIVERS)]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), repo / "data" / "every.parquet")
    fs = FeatureStore(repo)
    fs.apply()
    fs.materialize(None, T0)
    return fs


@pytest.fixture(scope="module")
def client(store: FeatureStore) -> Iterator[OnlineClient]:
    with (
        running_server(store.repo_path, poll_interval_s=0.2) as server,
        grpc.insecure_channel(server.target) as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        while health.Check(health_pb2.HealthCheckRequest(), timeout=5).status != SERVING:
            assert time.monotonic() < deadline, "the server did not report SERVING"
            time.sleep(0.05)
        with OnlineClient(server.target) as c:
            yield c


def training(store: FeatureStore, drivers: list[int]) -> pd.DataFrame:
    entity = pd.DataFrame(
        {"driver_id": drivers, "event_timestamp": [T0 + timedelta(hours=1)] * len(drivers)}
    )
    return store.get_historical_features(entity, [f"every:{f}" for f in FEATURES]).to_pandas()


def same_cell(a: Any, b: Any) -> bool:
    """Equal as pandas holds them: NaN/NA/NaT equal to themselves, numpy arrays by their
    dtype and elements."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and len(a) == len(b)
            and all(same_cell(x, y) for x, y in zip(a, b, strict=True))
        )
    if a is None or b is None:
        return a is b
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b)) and type(a) is type(b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b) and type(a) is type(b)


def assert_typed_like_training(online: pd.DataFrame, offline: pd.DataFrame) -> None:
    for name, dtype in FEATURES.items():
        assert online[name].dtype == offline[name].dtype, name
        assert online[name].dtype == pd.api.types.pandas_dtype(pandas_dtype(dtype)), name
        pairs = zip(online[name].tolist(), offline[name].tolist(), strict=True)
        assert all(same_cell(a, b) for a, b in pairs), (name, online[name], offline[name])
    # join keys are typed by their values: ints as nullable Int64
    assert online["driver_id"].dtype == "Int64"
    assert list(online.columns) == ["driver_id", *FEATURES]


def test_online_to_pandas_has_the_training_sets_dtypes_and_values(store: FeatureStore) -> None:
    offline = training(store, LOOKED_UP)
    online = store.get_online_features(
        [f"every:{f}" for f in FEATURES], [{"driver_id": d} for d in LOOKED_UP]
    ).to_pandas()
    assert_typed_like_training(online, offline)
    assert online["f_int64"].tolist()[:2] == [2**63 - 1, pd.NA]  # exact, and null stays null


def test_online_to_pandas_of_all_null_columns_has_the_training_sets_dtypes(
    store: FeatureStore, client: OnlineClient
) -> None:
    # every value null (a stored row of nulls, an unknown entity): nothing to infer from
    drivers = [2, 99]
    offline = training(store, drivers)
    refs = [f"every:{f}" for f in FEATURES]
    rows = [{"driver_id": d} for d in drivers]
    assert_typed_like_training(store.get_online_features(refs, rows).to_pandas(), offline)
    assert_typed_like_training(client.get_online_features(refs, rows).to_pandas(), offline)


def test_online_client_to_pandas_has_the_training_sets_dtypes_and_values(
    store: FeatureStore, client: OnlineClient
) -> None:
    refs = [f"every:{f}" for f in FEATURES]
    rows = [{"driver_id": d} for d in LOOKED_UP]
    online = client.get_online_features(refs, rows).to_pandas()
    assert_typed_like_training(online, training(store, LOOKED_UP))
    pd.testing.assert_frame_equal(online, store.get_online_features(refs, rows).to_pandas())
