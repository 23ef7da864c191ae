"""Feast's names that skewless does not have, each with what to use instead.

A Feast user porting a repo changes the import lines and meets these names in five
places: top-level imports (`from skewless import PushSource`), types
(`from skewless.types import Map`), FeatureStore methods (`store.push(...)`), arguments
of definitions (`FeatureView(..., enable_validation=True)`) and CLI commands
(`skewless feature-views list`). Each place looks its name up here, so the message says
what skewless does instead rather than "cannot import name" or "unknown feature view".
docs/porting-from-feast.md is the same table for people.
"""

from __future__ import annotations

import dis
from collections.abc import Mapping
from types import FrameType
from typing import Final, TypeVar

from skewless.errors import FeastAttributeError, FeastImportError

K = TypeVar("K")

GUIDE: Final = "docs/porting-from-feast.md"

_NO_DERIVED = (
    "skewless stores no Python functions: write the function's body as expressions, "
    "OnDemandFeatureView(name, sources=[...], schema=[Field(name, dtype, expr=...)]) "
    "(docs/expressions.md)"
)
_NO_STREAM = (
    "skewless has no streaming ingestion: land the stream in a Delta table or files "
    "(DeltaSource, FileSource) and run `skewless materialize-incremental` on a schedule"
)
_NO_PUSH = (
    "skewless has no push API: append the rows to the view's batch source (a file or "
    "Delta table) and run `skewless materialize-incremental`, which also writes late rows "
    "in event-time order"
)
_SOURCES = (
    "skewless reads Parquet or CSV files (FileSource) and Delta tables (DeltaSource), on "
    "any filesystem Spark reaches (local, s3a://, abfss://, gs://, hdfs://): export the "
    "table to one of those"
)
_NO_VECTORS = "skewless has no vector search or document embedding"
_NO_LABELS = (
    "skewless has no label views: labels are extra columns of the entity dataframe given "
    "to get_historical_features, which passes them through unchanged"
)
_NO_FEATURE_LOGGING = (
    "skewless does not log served features; every training set records a manifest of the "
    "exact definitions and data it read instead (FeatureStore.save_training_set)"
)

# `from skewless import <name>`: Feast's top-level names skewless lacks.
IMPORTS: Final[Mapping[str, str]] = {
    "Project": (
        "the project is the `project:` key of feature_store.yaml; remove the Project object"
    ),
    "on_demand_feature_view": _NO_DERIVED,
    "PushSource": _NO_PUSH,
    "PushMode": _NO_PUSH,
    "StreamFeatureView": _NO_STREAM,
    "KafkaSource": _NO_STREAM,
    "KinesisSource": _NO_STREAM,
    "BatchFeatureView": "a skewless FeatureView is a batch feature view: use FeatureView",
    "BigQuerySource": _SOURCES,
    "RedshiftSource": _SOURCES,
    "SnowflakeSource": _SOURCES,
    "AthenaSource": _SOURCES,
    "OracleSource": _SOURCES,
    "ChrononSource": _SOURCES,
    "SparkSource": _SOURCES,
    "TrinoSource": _SOURCES,
    "PostgreSQLSource": _SOURCES,
    "ValueType": (
        "types are skewless.types (Int64, String, ...); an Entity takes no value_type: its "
        "join keys' types come from the feature views' schemas or their sources"
    ),
    "Feature": "Feast's old Feature is skewless's Field(name=..., dtype=...)",
    "RepoConfig": (
        "skewless's RepoConfig is skewless.config.RepoConfig, read from feature_store.yaml "
        "by FeatureStore(repo_path=...)"
    ),
    "LabelView": _NO_LABELS,
    "ConflictPolicy": _NO_LABELS,
    "LoggingConfig": _NO_FEATURE_LOGGING,
    "FeastVectorStore": _NO_VECTORS,
    "DocEmbedder": _NO_VECTORS,
    "BaseEmbedder": _NO_VECTORS,
    "MultiModalEmbedder": _NO_VECTORS,
    "EmbeddingConfig": _NO_VECTORS,
    "BaseChunker": _NO_VECTORS,
    "TextChunker": _NO_VECTORS,
    "ChunkingConfig": _NO_VECTORS,
    "SchemaTransformFn": _NO_VECTORS,
    "FeastDataFrame": "get_historical_features takes a pandas or Spark DataFrame",
    "DataFrameEngine": "get_historical_features takes a pandas or Spark DataFrame",
}

_NESTED = (
    "skewless's types are Int32, Int64, Float32, Float64, String, Bytes, Bool, "
    "UnixTimestamp and Array of one of them: store nested values as a JSON String"
)

# `from skewless.types import <name>`: Feast's types skewless lacks.
TYPES: Final[Mapping[str, str]] = {
    "Map": _NESTED,
    "Json": _NESTED,
    "Struct": _NESTED,
    "PdfBytes": "use Bytes",
    "ImageBytes": "use Bytes",
    "Invalid": "every skewless field has a real type",
    "ValueType": IMPORTS["ValueType"],
}

_NO_ONLINE_WRITE = (
    "the online store is written only by materialization, so that it always holds what "
    "the offline tables hold: add the rows to the source and run materialize_incremental"
)
_SERVE = (
    "run `skewless serve` (gRPC, and HTTP/JSON with --http-port), or "
    "skewless.grpc.running_server() in a notebook or test"
)
_NOT_APPLIED_OBJECTS = (
    "skewless's applied objects are entities, feature views and feature services "
    "(list_entities, list_feature_views, list_feature_services)"
)

# `store.<name>(...)`: Feast FeatureStore methods skewless lacks.
STORE_METHODS: Final[Mapping[str, str]] = {
    "push": _NO_PUSH,
    "write_to_online_store": _NO_ONLINE_WRITE,
    "write_to_offline_store": _NO_PUSH,
    "get_online_features_async": (
        "call get_online_features from a worker thread (asyncio.to_thread), or call the "
        "gRPC or HTTP server"
    ),
    "retrieve_online_documents": _NO_VECTORS,
    "retrieve_online_documents_v2": _NO_VECTORS,
    "create_saved_dataset": ("save_training_set(name, job) saves a training set with its manifest"),
    "get_saved_dataset": "get_training_set(name)",
    "list_saved_datasets": "list_training_sets()",
    "serve": _SERVE,
    "serve_ui": "skewless has no web UI; the CLI shows definitions, history and lineage",
    "serve_offline": "skewless has no offline server: get_historical_features runs Spark",
    "serve_registry": "the registry is a SQLite file every FeatureStore reads directly",
    "serve_transformations": _NO_DERIVED,
    "get_feature_server_endpoint": _SERVE,
    "list_stream_feature_views": _NO_STREAM,
    "get_stream_feature_view": _NO_STREAM,
    "list_batch_feature_views": "list_feature_views()",
    "list_data_sources": "each feature view's source is `view.source`",
    "get_data_source": "each feature view's source is `view.source`",
    "delete_feature_view": "remove it from the repo's files and run `skewless apply`",
    "delete_feature_service": "remove it from the repo's files and run `skewless apply`",
    "write_logged_features": _NO_FEATURE_LOGGING,
    "validate_logged_features": _NO_FEATURE_LOGGING,
    "get_validation_reference": "skewless has no data validation references",
    "list_validation_references": "skewless has no data validation references",
    "list_projects": "one repo is one project: FeatureStore(...).project",
    "get_project": "one repo is one project: FeatureStore(...).project",
    "list_permissions": "skewless has no permissions; see docs/security.md",
    "get_permission": "skewless has no permissions; see docs/security.md",
    "list_all_feature_views": _NOT_APPLIED_OBJECTS,
}

# (kind of definition, argument) -> advice: Feast arguments skewless's definitions lack.
ARGUMENTS: Final[Mapping[tuple[str, str], str]] = {
    ("entity", "value_type"): IMPORTS["ValueType"],
    ("entity", "join_key"): "give `join_keys=[...]`, a list",
    ("feature view", "version"): (
        "skewless versions every definition on apply by itself (`skewless history VIEW`)"
    ),
    ("feature view", "enable_validation"): (
        "skewless always checks the source's columns and types against the schema"
    ),
    ("feature view", "batch_source"): "give the source as `source=`",
    ("feature view", "stream_source"): _NO_STREAM,
    ("aggregation", "slide_interval"): (
        "skewless windows slide continuously: a value is exact at every time (no hops)"
    ),
    ("feature view", "udf"): _NO_DERIVED,
    ("feature view", "mode"): _NO_DERIVED,
    ("on-demand feature view", "udf"): _NO_DERIVED,
    ("on-demand feature view", "mode"): _NO_DERIVED,
    ("on-demand feature view", "feature_transformation"): _NO_DERIVED,
    ("on-demand feature view", "write_to_online_store"): (
        "on-demand features are computed at request time and never stored; to store a "
        "derived value, give a FeatureView field an expr="
    ),
    ("on-demand feature view", "entities"): (
        "an on-demand view's entities are those of the feature views it reads: drop entities="
    ),
    ("feature view", "offline"): "every skewless feature view is offline",
    ("feature service", "logging_config"): _NO_FEATURE_LOGGING,
    ("source", "field_mapping"): (
        "rename the columns in the data, or name the features after the source's columns"
    ),
    ("source", "event_timestamp_column"): "give the column as `timestamp_field=`",
    ("source", "date_partition_column"): (
        "partitioned folders are read as they are; Spark prunes partitions by itself"
    ),
    ("source", "s3_endpoint_override"): (
        "set the endpoint in spark.conf (spark.hadoop.fs.s3a.endpoint) in feature_store.yaml"
    ),
    ("source", "query"): _SOURCES,
    ("source", "table"): _SOURCES,
    ("field", "tags"): "fields take a description; tags belong to the feature view",
    ("field", "vector_index"): _NO_VECTORS,
    ("field", "vector_length"): _NO_VECTORS,
    ("field", "vector_search_metric"): _NO_VECTORS,
}

# (kind of definition, argument) -> advice, when the argument is given a Feast object
# (not a string) where skewless takes a string.
OBJECT_VALUES: Final[Mapping[tuple[str, str], str]] = {
    ("source", "file_format"): (
        'give file_format="parquet" or "csv", a string (Feast\'s ParquetFormat() and the '
        "like have no counterpart)"
    ),
}

# `skewless <command>`: Feast CLI commands named differently or absent in skewless.
COMMANDS: Final[Mapping[str, str]] = {
    "ui": STORE_METHODS["serve_ui"],
    "registry-dump": "use `skewless list` and `skewless describe NAME`",
    "entities": "use `skewless list` and `skewless describe NAME`",
    "feature-views": "use `skewless list` and `skewless describe NAME`",
    "feature-services": "use `skewless list` and `skewless describe NAME`",
    "data-sources": "use `skewless describe VIEW`: a view's source is part of it",
    "on-demand-feature-views": _NO_DERIVED,
    "stream-feature-views": _NO_STREAM,
    "serve_offline": STORE_METHODS["serve_offline"],
    "serve-offline": STORE_METHODS["serve_offline"],
    "serve_registry": STORE_METHODS["serve_registry"],
    "serve-registry": STORE_METHODS["serve_registry"],
    "serve_transformations": _NO_DERIVED,
    "serve-transformations": _NO_DERIVED,
    "endpoint": "the server listens where `skewless serve --host/--port` says",
    "validate": "skewless has no data validation command",
    "version": "use `skewless --version`",
    "projects": "one repo is one project: its `project:` key in feature_store.yaml",
    "permissions": STORE_METHODS["list_permissions"],
    "saved-datasets": "use `skewless training-sets list`",
    "configuration": "the configuration is feature_store.yaml; `skewless plan` checks it",
    "delete": STORE_METHODS["delete_feature_view"],
    "registry": "use `skewless history VIEW`, `skewless rollback` and `skewless lineage`",
    "demo-notebooks": "the example repo's walkthrough is `make demo`",
}


def advice(table: Mapping[K, str], name: K, subject: str) -> str | None:
    """The message for Feast's `name` in `table`, after `subject` (say "PushSource is a
    Feast name that skewless does not have"); None: not a Feast name we know."""
    found = table.get(name)
    if found is None:
        return None
    return f"{subject}: {found}. See {GUIDE}."


def missing_name(name: str) -> str:
    return f"{name} is a Feast name that skewless does not have"


def _importing(frame: FrameType | None) -> bool:
    """Whether `frame` is looking a name up for an import statement: importlib's
    `from package import name` machinery, or an IMPORT_FROM instruction."""
    if frame is None:
        return False
    if frame.f_globals.get("__name__") == "importlib._bootstrap":
        return True
    at = frame.f_lasti
    return any(
        i.opname == "IMPORT_FROM" for i in dis.get_instructions(frame.f_code) if i.offset == at
    )


def refusal(name: str, detail: str, caller: FrameType | None) -> Exception:
    """The error for Feast's `name` missing from a skewless module. For an import
    statement an ImportError, the one exception `from skewless import X` shows as it is
    (an AttributeError there becomes "cannot import name"); for any other lookup an
    AttributeError, so that hasattr() and getattr() with a default work as usual."""
    if _importing(caller):
        return FeastImportError(name, detail)
    return FeastAttributeError(name, detail)
