"""log_training_set against a real MLflow tracking store (SQLite, in the test's tmp
folder) and a real Delta table written by Spark; read back through MlflowClient."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T  # noqa: N812

from skewless.errors import MlflowNotInstalledError
from skewless.offline.manifest import (
    CodeState,
    DefinitionPin,
    Environment,
    InputPin,
    Manifest,
    RowsDigest,
    SavedAs,
)
from skewless.offline.mlflow_run import (
    TAG_VALUE_CHARS,
    bounded_refs,
    log_training_set,
    mlflow_schema,
)
from skewless.registry.base import TrainingSetRecord

pytestmark = pytest.mark.filterwarnings(
    # sqlalchemy 2.1 warns about a loader strategy MLflow's SQL store configures
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

# as skewless digests rows (batch/digest.py): 32 hex digits, within MLflow's 36
RESULT_DIGEST = hashlib.sha256(b"the training set's rows").hexdigest()[:32]
ROWS = [
    (1001, datetime(2026, 6, 1, 8, tzinfo=UTC), 0.5, 3),
    (1002, datetime(2026, 6, 1, 9, tzinfo=UTC), 0.75, 0),
    (1001, datetime(2026, 6, 2, 8, tzinfo=UTC), None, 7),
]
SPARK_SCHEMA = T.StructType(
    [
        T.StructField("driver_id", T.LongType()),
        T.StructField("event_timestamp", T.TimestampType()),
        T.StructField("conv_rate", T.FloatType()),
        T.StructField("trips_last_hour", T.IntegerType()),
    ]
)


@pytest.fixture(scope="module")
def mlflow_module() -> ModuleType:
    """mlflow, imported with its telemetry off (it decides when imported)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow  # noqa: PLC0415

    return mlflow


@pytest.fixture(scope="module")
def empty_store(mlflow_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite tracking store with MLflow's tables created, which takes seconds: each
    test gets a copy of it."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow_module.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(
    mlflow_module: ModuleType, empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """mlflow, tracking into this test's own SQLite store in tmp_path, its runs by
    default in an experiment whose artifacts are in tmp_path too (never ./mlruns)."""
    mlflow = mlflow_module
    store = tmp_path / "mlflow.db"
    shutil.copyfile(empty_store, store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    experiment = mlflow.create_experiment(
        "skewless-tests", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    yield mlflow
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _manifest(
    saved_as: SavedAs | None = None,
    *,
    features: tuple[str, ...] = ("driver_hourly_stats:conv_rate", "driver_hourly_stats:trips"),
    digest: str = RESULT_DIGEST,
) -> Manifest:
    return Manifest(
        project="rides",
        created_at=datetime(2026, 6, 3, 12, tzinfo=UTC),
        registry_version=7,
        features=features,
        feature_service="trip_completion_model_v1",
        timestamp_column="event_timestamp",
        definitions=(
            DefinitionPin(
                kind="feature_view",
                name="driver_hourly_stats",
                version=2,
                data_version=1,
                data_hash="a" * 16,
                metadata_hash="b" * 16,
                registry_version=7,
            ),
        ),
        inputs=(
            InputPin(
                view="driver_hourly_stats",
                format="delta",
                path="data/driver_hourly_stats",
                location="/data/rides/driver_hourly_stats",
                delta_version=4,
            ),
        ),
        entity=RowsDigest(
            columns=(("driver_id", "bigint"), ("event_timestamp", "timestamp")),
            rows=len(ROWS),
            digest="e" * 64,
        ),
        result=RowsDigest(
            columns=(
                ("driver_id", "bigint"),
                ("event_timestamp", "timestamp"),
                ("conv_rate", "float"),
                ("trips_last_hour", "int"),
            ),
            rows=len(ROWS),
            digest=digest,
        ),
        code=CodeState(git_commit="4f1c0de" * 5 + "ab", git_dirty=False),
        environment=Environment(python="3.11.7", skewless="0.1.0", pyspark="4.2.0"),
        saved_as=saved_as,
    )


@pytest.fixture
def saved_set(spark: SparkSession, tmp_path: Path) -> tuple[Manifest, TrainingSetRecord]:
    """A saved training set: its rows at Delta version 0 of a table that later got a
    version 1 (more rows), and its registry record."""
    location = str(tmp_path / "training_sets" / "june")
    spark.createDataFrame(ROWS, SPARK_SCHEMA).write.format("delta").save(location)
    later = [(1003, datetime(2026, 6, 4, tzinfo=UTC), 0.1, 1)]
    spark.createDataFrame(later, SPARK_SCHEMA).write.format("delta").mode("append").save(location)
    manifest = _manifest(SavedAs(name="june", location=location, delta_version=0))
    record = TrainingSetRecord(
        name="june",
        location=location,
        delta_version=0,
        manifest=json.loads(manifest.to_json()),
        created_at=manifest.created_at,
    )
    return manifest, record


def _artifact(mlflow: ModuleType, run_id: str, path: str, tmp_path: Path) -> str:
    local = mlflow.MlflowClient().download_artifacts(run_id, path, str(tmp_path / "download"))
    return Path(local).read_text()


def test_log_training_set_records_a_saved_set_as_its_delta_table_at_the_saved_version(
    mlflow_store: ModuleType,
    saved_set: tuple[Manifest, TrainingSetRecord],
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    mlflow = mlflow_store
    manifest, record = saved_set
    with mlflow.start_run() as run:
        logged = log_training_set(manifest, record)

    assert logged.run_id == run.info.run_id
    assert not logged.started_run
    stored = mlflow.MlflowClient().get_run(run.info.run_id)
    [dataset_input] = stored.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert (dataset.name, dataset.digest) == ("june", RESULT_DIGEST)
    assert (logged.dataset_name, logged.dataset_digest) == ("june", RESULT_DIGEST)
    assert dataset.source_type == logged.source_type == "delta_table"
    # version 0 is written out: a source without a version would load the latest
    assert json.loads(dataset.source) == {"path": record.location, "delta_table_version": 0}
    assert {t.key: t.value for t in dataset_input.tags} == {"mlflow.data.context": "training"}
    assert json.loads(dataset.profile) == {"num_rows": 3}
    assert json.loads(dataset.schema) == {
        "mlflow_colspec": [
            {"type": "long", "name": "driver_id", "required": True},
            {"type": "datetime", "name": "event_timestamp", "required": True},
            {"type": "float", "name": "conv_rate", "required": True},
            {"type": "integer", "name": "trips_last_hour", "required": True},
        ]
    }

    # MLflow's own reader of the source gives back exactly the saved rows
    rows = mlflow.data.get_source(dataset_input).load()
    assert sorted(rows.collect()) == sorted(spark.createDataFrame(ROWS, SPARK_SCHEMA).collect())

    text = _artifact(mlflow, run.info.run_id, "skewless/training/manifest.json", tmp_path)
    assert logged.artifact_path == "skewless/training/manifest.json"
    assert text == manifest.to_json()
    assert Manifest.from_json(text) == manifest

    tags = {k: v for k, v in stored.data.tags.items() if k.startswith("skewless.")}
    assert (
        tags
        == logged.tags
        == {
            "skewless.training.project": "rides",
            "skewless.training.registry_version": "7",
            "skewless.training.feature_service": "trip_completion_model_v1",
            "skewless.training.features": "driver_hourly_stats:conv_rate,driver_hourly_stats:trips",
            "skewless.training.feature_count": "2",
            "skewless.training.rows": "3",
            "skewless.training.result_digest": RESULT_DIGEST,
            "skewless.training.training_set": "june",
            "skewless.training.delta_location": record.location,
            "skewless.training.delta_version": "0",
            "skewless.training.git_commit": manifest.code.git_commit,
            "skewless.training.git_dirty": "false",
            "skewless.training.skewless_version": "0.1.0",
            "skewless.training.manifest": "skewless/training/manifest.json",
        }
    )
    # searchable: the run of a training set is found by its tag
    found = mlflow.search_runs(
        filter_string="tags.`skewless.training.training_set` = 'june'", output_format="list"
    )
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_log_training_set_takes_the_saved_location_from_the_manifest(
    mlflow_store: ModuleType, saved_set: tuple[Manifest, TrainingSetRecord]
) -> None:
    mlflow = mlflow_store
    manifest, record = saved_set
    with mlflow.start_run() as run:
        log_training_set(manifest)
    [dataset_input] = mlflow.MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert dataset_input.dataset.name == "june"
    assert json.loads(dataset_input.dataset.source) == {
        "path": record.location,
        "delta_table_version": 0,
    }


def test_log_training_set_records_an_unsaved_set_with_a_code_source_and_the_same_digest(
    mlflow_store: ModuleType, saved_set: tuple[Manifest, TrainingSetRecord], tmp_path: Path
) -> None:
    mlflow = mlflow_store
    saved_manifest, record = saved_set
    unsaved = _manifest()
    with mlflow.start_run() as unsaved_run:
        logged = log_training_set(unsaved)
    with mlflow.start_run() as saved_run:
        log_training_set(saved_manifest, record)

    client = mlflow.MlflowClient()
    [unsaved_input] = client.get_run(unsaved_run.info.run_id).inputs.dataset_inputs
    [saved_input] = client.get_run(saved_run.info.run_id).inputs.dataset_inputs
    dataset = unsaved_input.dataset
    assert dataset.source_type == logged.source_type == "code"
    assert json.loads(dataset.source) == {
        "tags": {
            "skewless.origin": "get_historical_features; the rows were not saved",
            "skewless.project": "rides",
            "skewless.registry_version": "7",
            "skewless.created_at": "2026-06-03T12:00:00+00:00",
        }
    }
    assert dataset.name == "trip_completion_model_v1"
    # the same rows, saved or not, have the same digest
    assert dataset.digest == saved_input.dataset.digest == RESULT_DIGEST
    assert json.loads(dataset.profile) == {"num_rows": 3}

    tags = client.get_run(unsaved_run.info.run_id).data.tags
    assert "skewless.training.training_set" not in tags
    assert "skewless.training.delta_version" not in tags
    assert tags["skewless.training.result_digest"] == RESULT_DIGEST
    text = _artifact(mlflow, unsaved_run.info.run_id, logged.artifact_path, tmp_path)
    assert text == unsaved.to_json()


def test_log_training_set_starts_a_run_when_none_is_active_and_leaves_it_active(
    mlflow_store: ModuleType,
) -> None:
    mlflow = mlflow_store
    assert mlflow.active_run() is None
    long_digest = "f" * 64  # longer than MLflow keeps: the dataset gets its first 36
    logged = log_training_set(_manifest(digest=long_digest), name="adhoc")
    active = mlflow.active_run()
    assert active is not None
    assert logged.started_run
    assert active.info.run_id == logged.run_id
    mlflow.log_metric("auc", 0.91)  # what the caller logs next joins the same run
    mlflow.end_run()

    stored = mlflow.MlflowClient().get_run(logged.run_id)
    assert stored.data.metrics == {"auc": 0.91}
    [dataset_input] = stored.inputs.dataset_inputs
    assert (dataset_input.dataset.name, dataset_input.dataset.digest) == ("adhoc", "f" * 36)
    assert stored.data.tags["skewless.training.result_digest"] == long_digest


def test_log_training_set_fails_a_run_it_started_when_logging_fails(
    mlflow_store: ModuleType,
) -> None:
    mlflow = mlflow_store
    # MLflow refuses a dataset name over 500 characters
    with pytest.raises(mlflow.exceptions.MlflowException):
        log_training_set(_manifest(), name="x" * 501)
    assert mlflow.active_run() is None
    [run] = mlflow.search_runs(output_format="list")
    assert run.info.status == "FAILED"


def test_log_training_set_keeps_sets_of_different_contexts_apart_in_one_run(
    mlflow_store: ModuleType, saved_set: tuple[Manifest, TrainingSetRecord], tmp_path: Path
) -> None:
    mlflow = mlflow_store
    training, record = saved_set
    validation = _manifest()
    with mlflow.start_run() as run:
        log_training_set(training, record)
        log_training_set(validation, context="validation", name="holdout")

    stored = mlflow.MlflowClient().get_run(run.info.run_id)
    contexts = {
        i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"]
        for i in stored.inputs.dataset_inputs
    }
    assert contexts == {"june": "training", "holdout": "validation"}
    assert stored.data.tags["skewless.training.training_set"] == "june"
    assert "skewless.validation.training_set" not in stored.data.tags
    assert stored.data.tags["skewless.validation.manifest"] == "skewless/validation/manifest.json"
    assert (
        _artifact(mlflow, run.info.run_id, "skewless/training/manifest.json", tmp_path)
        == training.to_json()
    )
    assert (
        _artifact(mlflow, run.info.run_id, "skewless/validation/manifest.json", tmp_path)
        == validation.to_json()
    )


def test_log_training_set_refuses_a_context_that_cannot_name_tags(
    mlflow_store: ModuleType,
) -> None:
    with pytest.raises(ValueError, match="context 'train set/1'"):
        log_training_set(_manifest(), context="train set/1")
    assert mlflow_store.active_run() is None


def test_log_training_set_bounds_a_long_feature_list_to_whole_refs(
    mlflow_store: ModuleType,
) -> None:
    mlflow = mlflow_store
    refs = tuple(f"view_{i:03d}:a_rather_long_feature_name_{i:03d}" for i in range(300))
    with mlflow.start_run() as run:
        logged = log_training_set(_manifest(features=refs))

    shown = mlflow.MlflowClient().get_run(run.info.run_id).data.tags["skewless.training.features"]
    assert shown == logged.tags["skewless.training.features"]
    assert len(shown) <= TAG_VALUE_CHARS
    listed, _, rest = shown.partition(",...")
    assert rest == " (300 in all: skewless/training/manifest.json)"
    kept = listed.split(",")
    assert tuple(kept) == refs[: len(kept)]
    assert len(kept) > 50
    assert logged.tags["skewless.training.feature_count"] == "300"


def test_bounded_refs_cuts_between_refs_only_when_the_list_is_over_the_limit() -> None:
    assert bounded_refs(["a:x", "b:y"], "m.json", limit=7) == "a:x,b:y"
    refs = ["a" * 10 + ":x", "b" * 10 + ":y", "c" * 10 + ":z"]
    shown = bounded_refs(refs, "m.json", limit=37)
    assert shown == "aaaaaaaaaa:x,... (3 in all: m.json)"
    assert len(shown) <= 37


def test_mlflow_schema_maps_spark_types_and_gives_up_on_the_unmappable() -> None:
    schema = mlflow_schema([("ids", "array<bigint>"), ("flag", "boolean"), ("raw", "binary")])
    assert schema is not None
    assert schema.to_dict() == [
        {"type": "array", "items": {"type": "long"}, "name": "ids", "required": True},
        {"type": "boolean", "name": "flag", "required": True},
        {"type": "binary", "name": "raw", "required": True},
    ]
    assert mlflow_schema([("id", "bigint"), ("price", "decimal(10,2)")]) is None


def test_log_training_set_without_mlflow_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` meets uninstalled
    with pytest.raises(MlflowNotInstalledError) as caught:
        log_training_set(_manifest())
    assert "pip install 'skewless[mlflow]'" in str(caught.value)
    assert "mlflow" in caught.value.detail


def test_skewless_imports_without_mlflow() -> None:
    code = (
        "import sys\n"
        "sys.modules['mlflow'] = None\n"
        "import skewless, skewless.offline.mlflow_run\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_log_to_mlflow_through_the_store_saved_and_unsaved(
    mlflow_store: ModuleType, spark: SparkSession, tmp_path: Path
) -> None:
    """FeatureStore.log_to_mlflow over a real repo: a saved set by name (its Delta table
    at the saved version, loadable back), a job, and an erased set refused."""
    import pandas as pd  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from skewless import FeatureStore  # noqa: PLC0415
    from skewless.errors import TrainingSetErasedError  # noqa: PLC0415
    from skewless.registry.base import ErasureRecord  # noqa: PLC0415

    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: mlf\n")
    (repo / "defs.py").write_text(
        "from skewless import *\n"
        'd = Entity("d", join_keys=["id"])\n'
        'v = FeatureView("v", entities=[d], schema=[Field("x", Float64)],\n'
        '                source=FileSource("data/v.parquet", timestamp_field="ts"))\n'
    )
    at = datetime(2026, 6, 1, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {"id": [1, 2], "ts": pa.array([at, at], pa.timestamp("us", tz="UTC")), "x": [0.5, 1.5]}
        ),
        repo / "data/v.parquet",
    )
    store = FeatureStore(repo)
    store.apply()
    rows = pd.DataFrame({"id": [1, 2, 3], "event_timestamp": [at, at, at]})
    job = store.get_historical_features(rows, ["v:x"])
    saved = store.save_training_set("first", job)
    with mlflow_store.start_run() as run:
        logged = store.log_to_mlflow("first")
    assert logged.run_id == run.info.run_id
    client = mlflow_store.MlflowClient()
    (dataset_input,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert dataset_input.dataset.digest == saved.manifest.result.digest
    loaded = mlflow_store.data.get_source(dataset_input).load()
    assert loaded.count() == 3
    with mlflow_store.start_run() as other:
        store.log_to_mlflow(store.get_historical_features(rows, ["v:x"]))
    (unsaved,) = client.get_run(other.info.run_id).inputs.dataset_inputs
    assert unsaved.dataset.digest == saved.manifest.result.digest  # the same rows
    store.registry.record_erasure("first", ErasureRecord("v", 1, 1, 1, at))
    with pytest.raises(TrainingSetErasedError, match="first"):
        store.log_to_mlflow("first")
