"""A training set recorded in an MLflow run: a dataset input (MLflow's dataset API), the
manifest as an artifact, and tags to find the run by.

MLflow records what describes a dataset, never its rows: a name, a digest, where the
rows are (the source), a schema and a profile. The manifest holds each of them exactly,
so logging reads no rows and starts no Spark job:

- the digest is the manifest's result digest (cut to what MLflow stores), so the same
  rows get the same MLflow digest in every run, saved or not;
- a saved training set's source is its Delta table at the saved version, which
  `mlflow.data.get_source(dataset_input).load()` reads back exactly; an unsaved one's
  source is a code source saying that `get_historical_features` built it and that its
  rows were not saved;
- the schema is the result's columns in MLflow types, the profile its row count.

mlflow is the optional extra `skewless[mlflow]`, imported only when logging.
"""

# mlflow is an optional extra: every import of it is inside the function that needs it.
# ruff: noqa: PLC0415

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from skewless.errors import MlflowNotInstalledError
from skewless.offline.manifest import Manifest

if TYPE_CHECKING:
    from mlflow.data.dataset import Dataset
    from mlflow.types import Schema
    from mlflow.types.schema import Array, DataType, TensorSpec

# MLflow stores at most 36 characters of a dataset's digest.
MLFLOW_DIGEST_CHARS = 36
# MLflow keeps at most 8,000 characters of a tag value (older servers 5,000): the
# feature list is cut to whole refs below that, and the manifest artifact has them all.
TAG_VALUE_CHARS = 5000
# The context ("training", "validation", ...) names the tags and the artifact's folder,
# so sets logged into one run under different contexts keep apart.
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Spark's type names (simpleString and typeName) as MLflow data types.
_MLFLOW_TYPES = {
    "tinyint": "integer",
    "byte": "integer",
    "smallint": "integer",
    "short": "integer",
    "int": "integer",
    "integer": "integer",
    "bigint": "long",
    "long": "long",
    "float": "float",
    "double": "double",
    "string": "string",
    "boolean": "boolean",
    "binary": "binary",
    "timestamp": "datetime",
    "timestamp_ntz": "datetime",
    "date": "datetime",
}


class SavedSet(Protocol):
    """Where a saved training set's rows are: a registry's TrainingSetRecord or a
    manifest's SavedAs."""

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> str: ...

    @property
    def delta_version(self) -> int: ...


@dataclass(frozen=True)
class LoggedTrainingSet:
    """What `log_training_set` recorded, and where."""

    run_id: str
    started_run: bool  # no run was active: this call started it and left it active
    context: str
    dataset_name: str
    dataset_digest: str
    source_type: str  # "delta_table" (saved) or "code" (not saved)
    artifact_path: str  # the manifest, in the run's artifacts
    tags: dict[str, str]


def log_training_set(
    manifest: Manifest,
    saved: SavedSet | None = None,
    *,
    context: str = "training",
    name: str | None = None,
) -> LoggedTrainingSet:
    """Record the training set `manifest` describes in the active MLflow run.

    `saved`: where its rows were saved (default: `manifest.saved_as`); without it the
    set is logged as not saved. `context`: MLflow's dataset context, also the tags'
    prefix `skewless.<context>.` and the artifact's folder `skewless/<context>/`.
    `name`: the dataset's name (default: the saved name, else the feature service or
    the project). With no active run, one is started as MLflow's own `log_*` functions
    do, and left active so that what the caller logs next joins the same run."""
    if not _CONTEXT.fullmatch(context):
        raise ValueError(
            f"context {context!r} must be 1 to 64 letters, digits, '_' or '-': it names "
            "the run's tags and the manifest artifact's folder"
        )
    _require_mlflow()
    import mlflow

    saved = saved if saved is not None else manifest.saved_as
    artifact_path = f"skewless/{context}/manifest.json"
    dataset = training_set_dataset(manifest, saved, name=name)
    tags = run_tags(manifest, saved, context=context, artifact_path=artifact_path)

    active = mlflow.active_run()
    run = active if active is not None else mlflow.start_run()
    run_id = run.info.run_id
    try:
        mlflow.log_text(manifest.to_json(), artifact_path, run_id=run_id)
        mlflow.log_input(dataset, context=context)
        mlflow.set_tags(tags)
    except BaseException:
        if active is None:
            mlflow.end_run(status="FAILED")
        raise
    return LoggedTrainingSet(
        run_id=run_id,
        started_run=active is None,
        context=context,
        dataset_name=dataset.name,
        dataset_digest=dataset.digest,
        source_type=dataset.to_dict()["source_type"],
        artifact_path=artifact_path,
        tags=tags,
    )


def _require_mlflow() -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise MlflowNotInstalledError(str(exc)) from None


def training_set_dataset(
    manifest: Manifest, saved: SavedSet | None, *, name: str | None = None
) -> Dataset:
    """The MLflow dataset describing the training set, built from its manifest alone."""
    _require_mlflow()
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    class PinnedDeltaSource(DeltaDatasetSource):
        # MLflow's own to_dict leaves out version 0 (falsy), and a source without a
        # version loads the table's latest version: a saved set is often version 0.
        def to_dict(self) -> dict[Any, Any]:
            info = super().to_dict()
            if self.delta_table_version is not None:
                info["delta_table_version"] = self.delta_table_version
            return info

    class TrainingSetDataset(MetaDataset):
        # MetaDataset records no profile; the manifest knows the row count exactly.
        @property
        def profile(self) -> dict[str, Any]:
            return {"num_rows": manifest.result.rows}

        def to_dict(self) -> dict[str, str]:
            config = super().to_dict()
            config["profile"] = json.dumps(self.profile)
            return config

    source: DatasetSource
    if saved is not None:
        source = PinnedDeltaSource(path=saved.location, delta_table_version=saved.delta_version)
        default_name = saved.name
    else:
        source = CodeDatasetSource(
            tags={
                "skewless.origin": "get_historical_features; the rows were not saved",
                "skewless.project": manifest.project,
                "skewless.registry_version": str(manifest.registry_version),
                "skewless.created_at": manifest.created_at.isoformat(),
            }
        )
        default_name = manifest.feature_service or manifest.project
    return TrainingSetDataset(
        source=source,
        name=name or default_name,
        digest=manifest.result.digest[:MLFLOW_DIGEST_CHARS],
        schema=mlflow_schema(manifest.result.columns),
    )


def mlflow_schema(columns: Sequence[tuple[str, str]]) -> Schema | None:
    """(name, Spark type) columns as an MLflow schema; None when a type has no MLflow
    equivalent (a struct, a map, a decimal): the manifest still names every type."""
    from mlflow.types import ColSpec, Schema

    specs: list[ColSpec | TensorSpec] = []
    for column, spark_type in columns:
        mlflow_type = _mlflow_type(spark_type)
        if mlflow_type is None:
            return None
        specs.append(ColSpec(mlflow_type, column))
    return Schema(specs)


def _mlflow_type(spark_type: str) -> DataType | Array | None:
    from mlflow.types.schema import Array, DataType

    text = spark_type.strip().lower()
    if text.startswith("array<") and text.endswith(">"):
        element = _mlflow_type(text[len("array<") : -1])
        return None if element is None else Array(element)
    known = _MLFLOW_TYPES.get(text)
    return None if known is None else DataType[known]


def run_tags(
    manifest: Manifest, saved: SavedSet | None, *, context: str, artifact_path: str
) -> dict[str, str]:
    """The run's tags for a training set logged under `context`, each named
    `skewless.<context>.<field>`."""
    dirty = manifest.code.git_dirty
    fields = {
        "project": manifest.project,
        "registry_version": str(manifest.registry_version),
        "feature_service": manifest.feature_service,
        "features": bounded_refs(manifest.features, artifact_path),
        "feature_count": str(len(manifest.features)),
        "rows": str(manifest.result.rows),
        "result_digest": manifest.result.digest,
        "training_set": saved.name if saved else None,
        "delta_location": saved.location if saved else None,
        "delta_version": str(saved.delta_version) if saved else None,
        "git_commit": manifest.code.git_commit,
        "git_dirty": None if dirty is None else str(dirty).lower(),
        "skewless_version": manifest.environment.skewless,
        "manifest": artifact_path,
    }
    return {f"skewless.{context}.{k}": v for k, v in fields.items() if v is not None}


def bounded_refs(refs: Sequence[str], artifact_path: str, limit: int = TAG_VALUE_CHARS) -> str:
    """`refs` comma-separated, whole refs only, within `limit` characters; when cut,
    it ends saying how many there are and where they all are."""
    joined = ",".join(refs)
    if len(joined) <= limit:
        return joined
    suffix = f",... ({len(refs)} in all: {artifact_path})"
    kept: list[str] = []
    size = len(suffix)
    for ref in refs:
        size += len(ref) + (1 if kept else 0)
        if size > limit:
            break
        kept.append(ref)
    return ",".join(kept) + suffix
