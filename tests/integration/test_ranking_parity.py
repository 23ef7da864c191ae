"""Which row wins, across sequences of materialization runs: the online store ends up
holding, for every entity, exactly the row the offline point-in-time join picks.

The rows of a view are split into files that arrive one at a time; after each arrival a
run (full over all history or a part of it, or incremental) materializes what it sees,
and runs are replayed. Rows tie on (event time, created time) often, with and without a
created column, with nulls and NaN among the values."""

from __future__ import annotations

import math
import os
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.serving.response import FeatureStatus

T0 = datetime(2024, 5, 1, tzinfo=UTC)
FEATURES = ("trips", "rating", "label")


def _schema(created: bool) -> pa.Schema:
    fields = [("driver_id", pa.int64()), ("ts", pa.timestamp("us", tz="UTC"))]
    if created:
        fields.append(("created", pa.timestamp("us", tz="UTC")))
    fields += [("trips", pa.int64()), ("rating", pa.float64()), ("label", pa.string())]
    return pa.schema(fields)


def _defs(created: bool) -> str:
    created_arg = ', created_timestamp_column="created"' if created else ""
    return textwrap.dedent(
        f"""
        from skewless import *

        driver = Entity("driver", join_keys=["driver_id"])
        stats = FeatureView(
            "stats",
            entities=[driver],
            schema=[Field("trips", Int64), Field("rating", Float64), Field("label", String)],
            source=FileSource("data/stats", timestamp_field="ts"{created_arg}),
        )
        """
    )


def _repo(root: Path, redis_url: str, created: bool) -> FeatureStore:
    (root / "data" / "stats").mkdir(parents=True)
    project = f"rank{uuid.uuid4().hex[:8]}"
    (root / "feature_store.yaml").write_text(
        f"project: {project}\nonline_store:\n  type: redis\n  url: {redis_url}\n"
    )
    (root / "defs.py").write_text(_defs(created))
    return FeatureStore(root)


def _add_file(root: Path, rows: list[dict[str, Any]], created: bool) -> Path:
    path = root / "data/stats" / f"part-{uuid.uuid4().hex}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema(created)), path)
    return path


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None and b is None) or (
            isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        )
    return bool(a == b)


def _assert_online_equals_offline(store: FeatureStore, drivers: list[int], at: datetime) -> None:
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": [at] * len(drivers)})
    offline = store.get_historical_features(entity_df, [f"stats:{f}" for f in FEATURES])
    training = offline.to_arrow().to_pylist()
    online = store.get_online_features(
        [f"stats:{f}" for f in FEATURES], [{"driver_id": d} for d in drivers], request_time=at
    )
    for i, driver in enumerate(drivers):
        for feature in FEATURES:
            want = training[i][feature]
            got = online.values[feature][i]
            status = online.statuses[feature][i]
            found = status is FeatureStatus.PRESENT
            assert found or status is FeatureStatus.NOT_FOUND, (driver, feature, status)
            if not found:
                # no row at all offline: every feature of the training row is null
                assert all(training[i][f] is None for f in FEATURES), (driver, training[i])
                continue
            assert _same(got, want), (driver, feature, got, want)


def test_ranking_tied_rows_in_two_files_two_runs_agree_online_and_offline(
    spark: SparkSession, tmp_path: Path, redis_url: str
) -> None:
    """No created column; the second file repeats the first file's (key, event time)
    with other values. Whatever order they arrive in, online serves what offline picks."""
    store = _repo(tmp_path, redis_url, created=False)
    ts = T0
    first = [
        {"driver_id": d, "ts": ts, "trips": d * 10 + 5, "rating": 1.0, "label": "b"}
        for d in range(1, 9)
    ]
    second = [
        {"driver_id": d, "ts": ts, "trips": d * 10 + (d % 2) * 9, "rating": 0.5, "label": "a"}
        for d in range(1, 9)
    ]
    _add_file(tmp_path, first, created=False)
    store.apply()
    store.materialize(None, T0 + timedelta(hours=1))
    _add_file(tmp_path, second, created=False)
    store.materialize(None, T0 + timedelta(hours=1))
    _assert_online_equals_offline(store, list(range(1, 10)), T0 + timedelta(hours=1))


# --- the property ---------------------------------------------------------------------

HOURS = 5  # event times 0..5 h; the last run ends at 5 h, earlier runs anywhere up to it
VALUES = {
    "trips": st.none() | st.integers(-3, 3),
    "rating": st.none() | st.sampled_from([0.0, -0.0, 1.5, -2.0, math.nan, math.inf]),
    "label": st.none() | st.sampled_from(["", "a", "b", "ab", "\u00e9"]),
}


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    created = draw(st.booleans())
    n = draw(st.integers(1, 24))
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {
            "driver_id": draw(st.integers(1, 4)),
            # few distinct times: ties on the event time are the common case
            "ts": T0 + timedelta(hours=draw(st.integers(0, HOURS))),
        }
        if created:
            row["created"] = draw(st.none() | st.sampled_from([T0, T0 + timedelta(hours=1)]))
        for feature, values in VALUES.items():
            row[feature] = draw(values)
        rows.append(row)
    files = draw(st.integers(1, min(4, n)))
    # each row goes to one file; every file gets at least one row
    owner = [i % files for i in range(n)]
    owner = draw(st.permutations(owner))
    parts = [[r for r, o in zip(rows, owner, strict=True) if o == f] for f in range(files)]
    steps = []
    for _ in parts:
        # one or two runs after each file arrives, ending anywhere (earlier than the
        # previous run's end too), so rows past a run's end are left for a later one
        for _ in range(draw(st.integers(1, 2))):
            kind = draw(st.sampled_from(["full", "part", "incremental", "replay"]))
            steps.append((kind, draw(st.integers(0, HOURS)), draw(st.integers(0, HOURS))))
        steps.append(("file", 0, 0))
    # the last run covers all history, as a scheduled job would; earlier runs may not
    last = draw(st.sampled_from(["full", "incremental"]))
    return {"created": created, "parts": parts, "steps": steps[:-1], "last": last}


def _run(store: FeatureStore, step: tuple[str, int, int], done: list[Any]) -> None:
    kind, a, b = step
    if kind == "replay" and done:
        kind, start, stop = done[a % len(done)]
    elif kind == "part":
        start, stop = T0 + timedelta(hours=min(a, b)), T0 + timedelta(hours=max(a, b))
    else:
        start, stop = None, T0 + timedelta(hours=b)
    if kind == "incremental":
        store.materialize_incremental(stop)
    else:
        store.materialize(start, stop)
    done.append(("incremental" if kind == "incremental" else "full", start, stop))


@settings(max_examples=12)
@given(history=histories())
def test_ranking_any_sequence_of_runs_leaves_online_equal_to_offline(
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    history: dict[str, Any],
) -> None:
    """Files arrive one by one, each with a modification time an hour old and later than
    the previous file's (so every file is within the overlap an incremental run lists
    again, and which files a run skips is decided by what the runs recorded as read);
    runs of every kind follow, ending anywhere. After a last run over all history to
    5 h, every entity's online value is the offline join's at 5 h."""
    root = tmp_path_factory.mktemp("runs")
    store = _repo(root, redis_url, created=history["created"])
    end = T0 + timedelta(hours=HOURS)
    parts = iter(history["parts"])
    arrived = time.time() - 3600

    def arrive() -> None:
        nonlocal arrived
        path = _add_file(root, next(parts), history["created"])
        arrived += 10
        os.utime(path, (arrived, arrived))

    arrive()
    store.apply()
    done: list[Any] = []
    for step in history["steps"]:
        if step[0] == "file":
            arrive()
        else:
            _run(store, step, done)
    _run(store, (history["last"], 0, HOURS), done)
    _assert_online_equals_offline(store, [1, 2, 3, 4, 5], end)
