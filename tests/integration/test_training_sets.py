"""Reproducible training sets: manifests, as_of, saved sets and reproduce, over real
Parquet folders, a Delta source, Spark and Redis."""

from __future__ import annotations

import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from skewless import FeatureStore
from skewless.errors import (
    AsOfError,
    TrainingSetErasedError,
    TrainingSetExistsError,
    TrainingSetNotFoundError,
)
from skewless.offline.manifest import Manifest
from skewless.registry import ErasureRecord

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

DEFS = """
from datetime import timedelta
from skewless import *
driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips", entities=[driver],
    schema=[Field("trips_today", Int64), Field("rating", Float64)],
    source=FileSource("data/trips", timestamp_field="event_ts"),
    ttl=timedelta(hours={ttl_hours}),
)
scores = FeatureView(
    "scores", entities=[driver], schema=[Field("score", Float64)],
    source=DeltaSource("data/scores", timestamp_field="event_ts"),
)
model = FeatureService("driver_model", features=[trips, scores])
"""

TRIPS = pa.schema(
    [
        ("driver_id", pa.int64()),
        ("event_ts", pa.timestamp("us", tz="UTC")),
        ("trips_today", pa.int64()),
        ("rating", pa.float64()),
    ]
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def write_trips(repo: Path, rows: list[tuple[int, float, int, float | None]]) -> Path:
    path = repo / "data/trips" / f"part-{uuid.uuid4().hex[:8]}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(
        [{"driver_id": d, "event_ts": at(m), "trips_today": n, "rating": r} for d, m, n, r in rows],
        schema=TRIPS,
    )
    pq.write_table(table, path)
    return path


def append_scores(spark: SparkSession, repo: Path, rows: list[tuple[int, float, float]]) -> None:
    frame = pd.DataFrame(
        {
            "driver_id": [d for d, _, _ in rows],
            "event_ts": [at(m) for _, m, _ in rows],
            "score": [s for _, _, s in rows],
        }
    )
    spark.createDataFrame(frame).write.format("delta").mode("append").save(
        str(repo / "data/scores")
    )


def entity_rows() -> pd.DataFrame:
    # Times in a zone other than UTC, as a pandas user's data often is.
    paris = [pd.Timestamp(at(m)).tz_convert("Europe/Paris") for m in (30, 90, 90, 200, 30)]
    return pd.DataFrame(
        {"driver_id": [1, 1, 2, 2, 3], "event_timestamp": paris, "label": [0, 1, 0, 1, 1]}
    )


@pytest.fixture
def repo(tmp_path: Path, spark: SparkSession, redis_url: str) -> Path:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "feature_store.yaml").write_text(
        f"project: ts_{uuid.uuid4().hex[:8]}\nonline_store:\n  type: redis\n  url: {redis_url}\n"
    )
    (root / "defs.py").write_text(textwrap.dedent(DEFS.format(ttl_hours=24)))
    write_trips(root, [(1, 0, 3, 4.5), (2, 10, 5, None), (1, 60, 4, 4.0)])
    write_trips(root, [(2, 100, 7, 3.5), (3, 0, 1, 5.0)])
    append_scores(spark, root, [(1, 0, 0.5), (2, 0, 0.7), (3, 0, 0.9)])
    return root


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    columns = list(frame.columns)
    return frame.sort_values(columns, na_position="first").reset_index(drop=True)


def test_manifest_pins_definitions_inputs_rows_and_environment(repo: Path) -> None:
    store = FeatureStore(repo)
    _, version = store.apply()
    job = store.get_historical_features(entity_rows(), "driver_model")
    manifest = job.manifest
    assert manifest.registry_version == version
    assert manifest.feature_service == "driver_model"
    assert manifest.features == ("trips:trips_today", "trips:rating", "scores:score")
    assert {(p.kind, p.name, p.version) for p in manifest.definitions} == {
        ("feature_view", "trips", 1),
        ("feature_view", "scores", 1),
        ("feature_service", "driver_model", 1),
    }
    trips = manifest.input_of("trips")
    assert trips is not None and trips.files is not None
    assert sorted(f.path.split("/")[0] for f in trips.files) == ["data", "data"]
    assert all(f.size and f.sha256 and len(f.sha256) == 64 for f in trips.files)
    scores = manifest.input_of("scores")
    assert scores is not None and scores.delta_version == 0
    assert manifest.entity.rows == manifest.result.rows == 5
    assert [c for c, _ in manifest.entity.columns] == ["driver_id", "event_timestamp", "label"]
    assert [c for c, _ in manifest.result.columns][-3:] == ["trips_today", "rating", "score"]
    assert manifest.environment.pyspark and manifest.environment.java
    assert manifest.code.git_commit is None  # the repo is not in a git checkout
    assert Manifest.from_json(manifest.to_json()) == manifest
    # The digests depend on the rows, not on their order or the input's partitioning.
    again = store.get_historical_features(entity_rows().iloc[::-1], "driver_model").manifest
    assert again.result.digest == manifest.result.digest
    assert again.entity.digest == manifest.entity.digest
    other = entity_rows()
    other.loc[0, "label"] = 7
    changed = store.get_historical_features(other, "driver_model").manifest
    assert changed.entity.digest != manifest.entity.digest
    assert changed.result.digest != manifest.result.digest


def test_saved_set_reproduces_after_appends_materializations_and_definition_changes(
    repo: Path, spark: SparkSession
) -> None:
    store = FeatureStore(repo)
    store.apply()
    store.materialize(None, at(300))
    job = store.get_historical_features(entity_rows(), "driver_model")
    expected = job.to_pandas()
    pd.testing.assert_frame_equal(job.to_df(), expected)  # Feast's name for it
    saved = store.save_training_set("churn_v1", job, description="first model")
    assert saved.manifest.saved_as is not None
    assert saved.manifest.result.digest == job.manifest.result.digest
    expected["event_timestamp"] = expected["event_timestamp"].dt.tz_convert("UTC")
    got = saved.to_pandas()
    # The table keeps Spark's types: an input column of int64 comes back nullable Int64.
    pd.testing.assert_frame_equal(sorted_frame(got), sorted_frame(expected), check_dtype=False)
    features = ["trips_today", "rating", "score"]
    assert got[features].dtypes.equals(expected[features].dtypes)
    assert [s.name for s in store.list_training_sets()] == ["churn_v1"]
    with pytest.raises(TrainingSetExistsError):
        store.save_training_set("churn_v1", job)
    with pytest.raises(TrainingSetNotFoundError, match="churn_v2"):
        store.get_training_set("churn_v2")
    saved_at = datetime.now(UTC)
    time.sleep(0.05)  # file modification times and Delta commits after saved_at

    # Later: new source files with rows that would change the set, a Delta append, a
    # new materialization, a changed ttl applied.
    write_trips(repo, [(1, 20, 99, 1.0), (3, 10, 42, 2.0)])
    append_scores(spark, repo, [(1, 10, 9.9), (2, 80, 8.8)])
    store.materialize(end_date=at(400), feature_views=["trips", "scores"])  # Feast's names
    (repo / "defs.py").write_text(textwrap.dedent(DEFS.format(ttl_hours=1)))
    store.apply()
    now = store.get_historical_features(entity_rows(), "driver_model").manifest
    assert now.result.digest != saved.manifest.result.digest  # today's data differs

    report = store.reproduce("churn_v1")
    assert report.identical, report.lines()
    assert report.rows_rebuilt == 5
    rebuilt = store.rebuild_training_set("churn_v1").to_spark_unordered().toArrow()
    saved_rows = saved.to_spark().toArrow()
    assert rebuilt.schema == saved_rows.schema
    keys = [(c, "ascending") for c in saved_rows.column_names]
    assert rebuilt.sort_by(keys).equals(saved_rows.sort_by(keys))
    # From the manifest alone (its saved rows found by name), and as of the save time.
    assert store.reproduce(Manifest.from_json(saved.manifest.to_json())).identical
    as_then = store.get_historical_features(entity_rows(), "driver_model", as_of=saved_at)
    assert as_then.manifest.result.digest == saved.manifest.result.digest
    assert as_then.manifest.registry_version == saved.manifest.registry_version

    # A pinned file changed: the set is rebuilt with other rows, and the report says why.
    pinned = saved.manifest.input_of("trips")
    assert pinned is not None and pinned.files is not None
    first = Path(pinned.files[0].location)
    original = first.read_bytes()
    table = pq.read_table(first)
    pq.write_table(table.set_column(2, "trips_today", pa.array([0] * len(table))), first)
    changed = store.reproduce("churn_v1")
    assert changed.outcome == "different"
    assert any(pinned.files[0].path in reason for reason in changed.reasons)
    assert changed.columns_differing == ("trips_today",)
    assert changed.rows_only_saved and changed.rows_only_rebuilt
    with pytest.raises(AsOfError, match="changed"):
        store.get_historical_features(entity_rows(), "driver_model", as_of=saved.manifest)
    first.write_bytes(original)  # the same content again (a new mtime): identical
    assert store.reproduce("churn_v1").identical

    # A pinned Delta version vacuumed: the set cannot be rebuilt, and the report says so.
    DeltaTable.forPath(spark, str(repo / "data/scores")).delete("driver_id = 3")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, str(repo / "data/scores")).vacuum(0)
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    gone = store.reproduce("churn_v1")
    assert gone.outcome == "not reproducible"
    assert any("Delta version 0 was vacuumed" in reason for reason in gone.reasons)


def test_erased_set_is_not_reproducible(repo: Path) -> None:
    store = FeatureStore(repo)
    store.apply()
    job = store.get_historical_features(entity_rows(), ["trips:rating"])
    store.save_training_set("small", job)
    erasure = ErasureRecord("trips", keys=1, rows_removed=2, delta_version=1, erased_at=T0)
    store.registry.record_erasure("small", erasure)
    report = store.reproduce("small")
    assert report.outcome == "not reproducible"
    assert report.reasons[0].startswith("erased: 2 rows of 1 entity keys of feature view 'trips'")
    manifest = store.get_training_set("small").manifest
    by_manifest = store.reproduce(manifest, entity_df=entity_rows())
    assert by_manifest.outcome == "not reproducible"
    # A rebuild would bring the erased entities back from the sources: refused.
    with pytest.raises(TrainingSetErasedError, match="small"):
        store.rebuild_training_set("small")
    with pytest.raises(TrainingSetErasedError, match="small"):
        store.get_historical_features(entity_rows(), ["trips:rating"], as_of=manifest)


def test_rewritten_file_with_the_same_rows_is_identical_with_a_note(repo: Path) -> None:
    store = FeatureStore(repo)
    store.apply()
    job = store.get_historical_features(entity_rows(), ["trips:rating", "trips:trips_today"])
    saved = store.save_training_set("same_rows", job)
    pinned = saved.manifest.input_of("trips")
    assert pinned is not None and pinned.files is not None
    first = Path(pinned.files[0].location)
    pq.write_table(pq.read_table(first), first, compression="gzip")  # other bytes, same rows
    report = store.reproduce("same_rows")
    assert report.identical
    assert any(f"pinned file {pinned.files[0].path} changed" in r for r in report.reasons)
    assert "note: " in "\n".join(report.lines())


def test_source_at_a_uri_is_pinned_by_listing(repo: Path) -> None:
    """A source given as a URI (here file://, read through Hadoop's file system as an
    s3a:// one would be) is pinned by the files listed, their sizes and times."""
    defs = repo / "defs.py"
    uri = (repo / "data" / "trips").as_uri()
    defs.write_text(defs.read_text().replace('FileSource("data/trips"', f'FileSource("{uri}"'))
    store = FeatureStore(repo)
    store.apply()
    saved = store.save_training_set(
        "remote", store.get_historical_features(entity_rows(), ["trips:rating"])
    )
    pinned = saved.manifest.input_of("trips")
    assert pinned is not None and pinned.files is not None and len(pinned.files) == 2
    assert all(f.sha256 is None and f.size for f in pinned.files)
    write_trips(repo, [(1, 20, 99, 1.0)])  # a file added later is not read
    assert store.reproduce("remote").identical
    first = Path(pinned.files[0].location.removeprefix("file:"))
    pq.write_table(pq.read_table(first).slice(0, 1), first)
    changed = store.reproduce("remote")
    assert changed.outcome == "different"
    assert any("changed (its size or modification time)" in r for r in changed.reasons)


def test_as_of_registry_version_uses_the_definitions_applied_then(repo: Path) -> None:
    store = FeatureStore(repo)
    _, first = store.apply()
    (repo / "defs.py").write_text(textwrap.dedent(DEFS.format(ttl_hours=1)))
    _, second = store.apply()
    rows = entity_rows()
    old = store.get_historical_features(rows, ["trips:trips_today"], as_of=first)
    new = store.get_historical_features(rows, ["trips:trips_today"])
    assert old.manifest.registry_version == first
    assert new.manifest.registry_version == second
    # driver 2 at minute 200: the row of minute 100 is within 24 hours, not within 1.
    assert old.to_pandas()["trips_today"].tolist()[3] == 7
    assert pd.isna(new.to_pandas()["trips_today"].tolist()[3])
    for bad in (0, second + 1):
        with pytest.raises(AsOfError, match=f"registry version {bad} does not exist"):
            store.get_historical_features(rows, ["trips:trips_today"], as_of=bad)
    with pytest.raises(AsOfError, match="nothing was applied"):
        store.get_historical_features(rows, ["trips:trips_today"], as_of=datetime(2000, 1, 1))


def test_unsaved_manifest_reproduces_with_its_entity_rows(repo: Path) -> None:
    store = FeatureStore(repo)
    store.apply()
    job = store.get_historical_features(entity_rows(), ["trips:rating", "scores:score"])
    manifest = job.manifest
    with pytest.raises(AsOfError, match="pass its entity rows"):
        store.reproduce(manifest)
    assert store.reproduce(manifest, entity_df=entity_rows()).identical
    other = entity_rows().iloc[:3]
    report = store.reproduce(manifest, entity_df=other)
    assert report.outcome == "different"
    assert any("entity rows are not those the manifest pins" in r for r in report.reasons)
