from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from skewless import Entity, FeatureView, Field, FileSource, Float64, Int64, String
from skewless.batch.compile import compile_requests
from skewless.errors import EntityDataFrameError
from skewless.online.codec import Record, encode_value, entity_key
from skewless.serving.service import (
    FeatureStatus,
    assemble,
    get_online_features,
    lookup_keys,
)
from skewless.timeutil import utc_micros

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


def test_lookup_reads_every_view_in_one_read_a_key_per_row_and_view_in_order() -> None:
    reqs = compile_requests(["zones:demand", "stats:rating"], VIEWS, full_feature_names=True)
    rows = [{"driver_id": 7, "city": "lyon", "zone_id": 2}]
    keys = lookup_keys("p", reqs, rows)
    assert keys == [[entity_key("p", "zones", ["lyon", 2])], [entity_key("p", "stats", [7])]]
    calls: list[list[bytes]] = []

    def read(batch: list[bytes]) -> list[bytes | None]:
        calls.append(batch)
        return [None] * len(batch)

    resp = get_online_features(read, "p", reqs, rows, NOW)
    assert calls == [keys[0] + keys[1]]  # one MGET for every view
    assert resp.features == ["zones__demand", "stats__rating"]
    assert resp.join_keys == ["city", "zone_id", "driver_id"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({}, "has no join key 'driver_id'"),
        ({"driver_id": "1"}, "is a str"),
        ({"driver_id": 1.0}, "is a float"),
        ({"driver_id": True}, "is a bool"),
    ],
)
def test_lookup_refuses_missing_or_mistyped_keys(row: dict[str, object], message: str) -> None:
    reqs = compile_requests(["stats:rating"], VIEWS, full_feature_names=False)
    with pytest.raises(EntityDataFrameError, match=message):
        lookup_keys("p", reqs, [row])


def test_lookup_accepts_numpy_integers_and_null_keys() -> None:
    reqs = compile_requests(["stats:rating"], VIEWS, full_feature_names=False)
    keys = lookup_keys("p", reqs, [{"driver_id": np.int64(3)}, {"driver_id": None}])
    assert keys[0][0] == entity_key("p", "stats", [3])
