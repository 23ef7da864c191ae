from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from skewless import (
    Array,
    Bool,
    Bytes,
    Entity,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)
from skewless.errors import EntityDataFrameError, EntityRowsError
from skewless.feature_request import FeatureRequest, compile_requests
from skewless.online.codec import Record, encode_value, entity_key
from skewless.serving.plan import MISSING, LookupPlan
from skewless.serving.response import FeatureStatus, OnlineResponse
from skewless.serving.service import lookup
from skewless.timeutil import utc_micros
from skewless.types import ArrayType, DType, pandas_dtype

driver = Entity("driver", join_keys=["driver_id"])
zone = Entity("zone", join_keys=["city", "zone_id"])
src = FileSource("x.parquet", timestamp_field="ts")
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("rating", Float64), Field("name", String)],
    source=src,
    ttl=timedelta(hours=1),
)
zones = FeatureView(
    "zones", entities=[zone], schema=[Field("city", String), Field("demand", Float64)], source=src
)
VIEWS = {"stats": stats, "zones": zones}
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def assemble(
    reqs: FeatureRequest,
    rows: list[dict[str, Any]],
    raw: list[list[bytes | None]],
    now: datetime = NOW,
) -> OnlineResponse:
    """The response to what Redis returned for each view (one list per view)."""
    plan = LookupPlan("p", reqs)
    flat = [value for values in raw for value in values]
    return plan.response(rows, plan.assemble(flat, len(rows), utc_micros(now)))


def lookup_keys(
    project: str, reqs: FeatureRequest, rows: list[dict[str, Any]]
) -> list[list[bytes]]:
    """The keys a lookup reads, one list per view."""
    keys = LookupPlan(project, reqs).keys(rows)
    return [keys[i * len(rows) : (i + 1) * len(rows)] for i in range(len(reqs.views))]


def stored(rating: float | None, name: str | None, at: datetime) -> bytes:
    return encode_value(Record(utc_micros(at), None, (rating, name)), [Float64, String])


def test_assemble_statuses_and_the_ttl_boundary() -> None:
    reqs = compile_requests(["stats:name", "stats:rating"], VIEWS, full_feature_names=False)
    rows = [{"driver_id": i} for i in range(4)]
    raw = [
        [
            stored(4.5, "a", NOW - timedelta(minutes=5)),
            stored(4.0, "b", NOW - timedelta(hours=1)),  # exactly t - ttl: still valid
            stored(3.0, "c", NOW - timedelta(hours=1, microseconds=1)),  # one us too old
            None,
        ]
    ]
    resp = assemble(reqs, rows, raw, NOW)
    assert resp.features == ["name", "rating"]
    assert resp.values["rating"] == [4.5, 4.0, None, None]
    assert resp.values["name"] == ["a", "b", None, None]
    assert resp.statuses["rating"] == [
        FeatureStatus.PRESENT,
        FeatureStatus.PRESENT,
        FeatureStatus.OUTSIDE_MAX_AGE,
        FeatureStatus.NOT_FOUND,
    ]
    # The event time of a stale value is still reported; not-found has none.
    assert resp.event_timestamps["rating"][2] == NOW - timedelta(hours=1, microseconds=1)
    assert resp.event_timestamps["rating"][3] is None
    assert resp.to_dict() == {
        "driver_id": [0, 1, 2, 3],
        "name": ["a", "b", None, None],
        "rating": [4.5, 4.0, None, None],
    }
    # Feast's include_event_timestamps: whole seconds since the epoch, None for no value
    stamped = resp.to_dict(include_event_timestamps=True)
    seconds = int((NOW - timedelta(minutes=5)).timestamp())
    assert stamped["rating__ts"] == [seconds, seconds - 3300, seconds - 3301, None]
    assert stamped["rating__ts"] == stamped["name__ts"]
    assert list(stamped) == ["driver_id", "name", "name__ts", "rating", "rating__ts"]
    assert resp.to_df().equals(resp.to_pandas())


def test_lookup_reads_every_view_in_one_read_a_key_per_row_and_view_in_order() -> None:
    reqs = compile_requests(["zones:demand", "stats:rating"], VIEWS, full_feature_names=True)
    rows = [{"driver_id": 7, "city": "lyon", "zone_id": 2}]
    keys = lookup_keys("p", reqs, rows)
    assert keys == [[entity_key("p", "zones", ["lyon", 2])], [entity_key("p", "stats", [7])]]
    calls: list[list[bytes]] = []

    def read(batch: list[bytes]) -> list[bytes | None]:
        calls.append(batch)
        return [None] * len(batch)

    resp = lookup(LookupPlan("p", reqs), read, rows, NOW)
    assert calls == [keys[0] + keys[1]]  # one MGET for every view
    assert resp.features == ["zones__demand", "stats__rating"]
    assert resp.join_keys == ["city", "zone_id", "driver_id"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({}, "entity row 1: no join key 'driver_id' (needed by feature view 'stats')"),
        (
            {"driver_id": "1001"},
            "entity row 1: join key 'driver_id' is a str ('1001'), but feature view 'stats' "
            "declares it Int64: give an int",
        ),
        ({"driver_id": 1.0}, "join key 'driver_id' is a float (1.0), but feature view"),
        ({"driver_id": True}, "join key 'driver_id' is a bool (True), but feature view"),
    ],
)
def test_lookup_refuses_missing_or_mistyped_keys_naming_row_key_and_types(
    row: dict[str, object], message: str
) -> None:
    reqs = compile_requests(["stats:rating"], VIEWS, full_feature_names=False)
    with pytest.raises(EntityRowsError) as info:
        lookup_keys("p", reqs, [{"driver_id": 1}, row])
    assert str(info.value).startswith("entity row 1: ") and message in str(info.value)
    assert (info.value.row, info.value.key) == (1, "driver_id")
    assert not isinstance(info.value, EntityDataFrameError)  # not the entity_df's error


def test_lookup_key_of_undeclared_type_takes_any_key_kind_and_refuses_others() -> None:
    # `zones` does not declare `zone_id`: any int, str, bytes or bool is a key (of an
    # entity that may not exist, so NOT_FOUND), anything else is refused
    reqs = compile_requests(["zones:demand"], VIEWS, full_feature_names=False)
    for value in (1, "1", b"1", True, None):
        lookup_keys("p", reqs, [{"city": "a", "zone_id": value}])
    with pytest.raises(EntityRowsError) as info:
        lookup_keys("p", reqs, [{"city": "a", "zone_id": 1.5}])
    assert str(info.value) == (
        "entity row 0: join key 'zone_id' is a float (1.5); a join key is an int, str, "
        "bytes or bool (feature view 'zones')"
    )
    assert info.value.key == "zone_id"


def test_plan_refuses_a_mistyped_key_as_the_general_check_does() -> None:
    # the compiled plan's fast path only takes exactly typed keys; anything else goes
    # through check_join_keys, rows given as dicts or as columns (the gRPC server's form)
    plan = LookupPlan("p", compile_requests(["stats:rating"], VIEWS, full_feature_names=False))
    with pytest.raises(EntityRowsError, match="declares it Int64"):
        plan.keys([{"driver_id": "7"}])
    with pytest.raises(EntityRowsError, match="entity row 1: join key 'driver_id' is a str"):
        plan.keys_from_columns({"driver_id": [7, "7"]}, 2)
    with pytest.raises(EntityRowsError, match="entity row 1: no join key 'driver_id'"):
        plan.keys_from_columns({"driver_id": [7, MISSING]}, 2)
    # a key no feature needs may be missing or of any type
    assert plan.keys_from_columns({"driver_id": [7, 8], "x": [MISSING, 1.5]}, 2) == plan.keys(
        [{"driver_id": 7}, {"driver_id": 8, "x": 1.5}]
    )


def test_lookup_accepts_numpy_integers_and_null_keys() -> None:
    reqs = compile_requests(["stats:rating"], VIEWS, full_feature_names=False)
    keys = lookup_keys("p", reqs, [{"driver_id": np.int64(3)}, {"driver_id": None}])
    assert keys[0][0] == entity_key("p", "stats", [3])


ALL_TYPES: list[DType] = [Int32, Int64, Float32, Float64, String, Bool, UnixTimestamp, Bytes]
ALL_TYPES += [Array(t) for t in list(ALL_TYPES)]  # type: ignore[arg-type]
SAMPLE: dict[str, Any] = {
    "int32": -(2**31),
    "int64": 2**63 - 1,  # not exact as a float: must not pass through float64
    "float32": 0.5,
    "float64": float("nan"),
    "string": "é",
    "bool": False,
    "unix_timestamp": utc_micros(NOW),
    "bytes": b"\x00",
}


def test_online_to_pandas_types_every_feature_by_its_declared_type() -> None:
    features = {f"f_{t.name.replace('<', '_').rstrip('>')}": t for t in ALL_TYPES}
    wide = FeatureView(
        "wide",
        entities=[driver],
        schema=[Field(name, t) for name, t in features.items()],
        source=src,
    )
    values = tuple(
        [SAMPLE[t.element.name], None] if isinstance(t, ArrayType) else SAMPLE[t.name]
        for t in features.values()
    )
    raw = encode_value(Record(utc_micros(NOW), None, values), list(features.values()))
    refs = [f"wide:{n}" for n in features]
    reqs = compile_requests(refs, {"wide": wide}, full_feature_names=False)
    # a stored row, a row whose every value is null (not found), and a null key
    resp = assemble(
        reqs, [{"driver_id": 1}, {"driver_id": 2}, {"driver_id": None}], [[raw, None, None]]
    )
    frame = resp.to_pandas()
    assert list(frame.columns) == ["driver_id", *features]
    assert str(frame["driver_id"].dtype) == "Int64"  # a null key keeps the ints ints
    for name, dtype in features.items():
        assert frame[name].dtype == pd.api.types.pandas_dtype(pandas_dtype(dtype)), name
    assert frame["f_int64"][0] == 2**63 - 1 and frame["f_int64"][1] is pd.NA
    assert frame["f_unix_timestamp"][0] == pd.Timestamp(NOW)
    assert frame["f_float64"].isna().all()
    assert list(frame["f_array_string"][0]) == ["é", None]  # a numpy array, as Arrow gives
    assert frame["f_array_bool"][1] is None


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([1, None, np.int64(3)], "Int64"),
        ([True, None], "boolean"),
        (["a", None], "object"),
        ([b"a", 1], "object"),
        ([None, None], "object"),
    ],
)
def test_online_to_pandas_types_join_keys_by_their_values(values: list[Any], dtype: str) -> None:
    reqs = compile_requests(["zones:demand"], VIEWS, full_feature_names=False)
    rows = [{"city": v, "zone_id": v} for v in values]
    frame = assemble(reqs, rows, [[None] * len(rows)]).to_pandas()
    assert str(frame["city"].dtype) == str(frame["zone_id"].dtype) == dtype
    assert str(frame["demand"].dtype) == "float64"


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, np.uint64(2**64 - 1)])
def test_lookup_refuses_an_integer_key_past_64_bits_naming_it(value: Any) -> None:
    """Rows as dicts and as columns (the gRPC server's form) alike."""
    plan = LookupPlan("p", compile_requests(["stats:rating"], VIEWS, full_feature_names=False))
    with pytest.raises(EntityRowsError, match="outside a 64-bit integer's range") as info:
        plan.keys([{"driver_id": 1}, {"driver_id": value}])
    assert (info.value.row, info.value.key) == (1, "driver_id")
    with pytest.raises(EntityRowsError, match="entity row 1: join key 'driver_id' is"):
        plan.keys_from_columns({"driver_id": [1, value]}, 2)
