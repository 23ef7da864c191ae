"""Feast's `feature_store.yaml` keys that skewless does not take, and what it uses instead.

Most of a Feast `feature_store.yaml` carries over: `project`, `registry` given as a path,
`online_store: {type: redis}`, `${ENV_VAR}` references. The keys in the tables below are
Feast's alone, and each has a message saying what skewless does instead. A key whose
value asks for what skewless does anyway (`provider: local`, `auth: {type: no_auth}`)
is ignored with a warning; any other refuses the configuration, listed together with
every other problem of the file, so nothing runs on a half-understood configuration.

`feast_findings` walks a parsed file (after `${ENV_VAR}` expansion) and returns the
findings and the document without those keys, so that validating what is left reports
only skewless's own problems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """A Feast-only key: where it is (`online_store.type`), what skewless uses instead,
    and whether the configuration is refused for it (else it is ignored, with a warning)."""

    path: str
    message: str
    refused: bool


def _never(_value: Any) -> bool:
    return False


def _is(*values: Any) -> Callable[[Any], bool]:
    """A value test: the value is one of `values` (strings compared without case)."""

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return value.lower() in {str(v).lower() for v in values}
        return any(value is v or (type(value) is type(v) and value == v) for v in values)

    return test


@dataclass(frozen=True)
class FeastKey:
    """What skewless uses instead of a Feast key, and which of its values ask for what
    skewless does anyway (those are ignored with a warning instead of refused)."""

    instead: str
    harmless: Callable[[Any], bool] = _never


_REDIS = (
    "skewless's online store is Redis: `type: redis` with `url: redis://host:port`, "
    "or no url for the embedded server"
)
_DELTA = (
    "skewless keeps feature tables in Delta (`offline_store: {type: delta, path: data/offline}`, "
    "the default) and reads sources (FileSource, DeltaSource) with Spark"
)
_SERVE = (
    "skewless's online server is `skewless serve`; its limits and TLS go in the `serving:` section"
)

# Top-level keys of Feast's RepoConfig.
TOP_LEVEL: dict[str, FeastKey] = {
    "provider": FeastKey(
        "skewless always runs locally or on the Spark master set in `spark.master`: remove it",
        harmless=_is("local"),
    ),
    "entity_key_serialization_version": FeastKey(
        "skewless's online key encoding is fixed (online data Feast wrote is not read: "
        "materialize again with skewless): remove it",
        harmless=lambda _: True,
    ),
    "batch_engine": FeastKey(
        "materialization always runs on Spark, at `spark.master`; the driver writes to Redis "
        "up to `online_store.driver_write_max_keys` entities, the executors beyond: remove it"
    ),
    "feature_server": FeastKey(f"{_SERVE}: remove it"),
    "flags": FeastKey(
        "Feast's feature flags: skewless has none, every feature is on: remove it",
        harmless=lambda _: True,
    ),
    "auth": FeastKey(
        "`skewless serve` has no token authentication; it authenticates clients with mutual "
        "TLS (`serving.tls.client_ca_file`): remove it",
        harmless=lambda v: _is("no_auth")(v.get("type") if isinstance(v, Mapping) else v),
    ),
    "coerce_tz_aware": FeastKey(
        "skewless always reads naive timestamps as UTC and converts aware ones to UTC: remove it",
        harmless=_is(True),
    ),
    "repo_path": FeastKey(
        "skewless resolves relative paths against the repo folder (the one holding "
        "feature_store.yaml, chosen with -c/--repo): remove it"
    ),
    "go_feature_serving": FeastKey(
        "skewless has one online server, `skewless serve`: remove it", harmless=_is(False)
    ),
    "go_feature_retrieval": FeastKey(
        "online lookups run in skewless's own serving core, in process or behind "
        "`skewless serve`: remove it",
        harmless=_is(False),
    ),
    "project_description": FeastKey(
        "skewless keeps no project description (a YAML comment can): remove it",
        harmless=lambda _: True,
    ),
    "materialization": FeastKey(
        "skewless's materialization writes the latest row per entity and has no batch-size "
        "setting (the driver writes up to `online_store.driver_write_max_keys` entities, "
        "the Spark executors beyond): remove it. In skewless, `materialization:` is the "
        "project's default schedule (`materialization: {cron: '0 * * * *'}`)"
    ),
    "openlineage": FeastKey("skewless emits no OpenLineage events: remove it"),
    "mlflow": FeastKey(
        "skewless logs a training set to the active MLflow run with "
        "`store.log_to_mlflow(name)`; MLflow's own settings (MLFLOW_TRACKING_URI) say where: "
        "remove it"
    ),
    "data_quality_monitoring": FeastKey("skewless has no data quality monitoring: remove it"),
    "embedding_model": FeastKey("skewless has no vector search: remove it"),
}
TOP_LEVEL["batch_engine_config"] = TOP_LEVEL["batch_engine"]

_REGISTRY_FILE = (
    "skewless's registry is a local SQLite file: `registry: data/registry.db` "
    "or `registry: {type: sqlite, path: ...}`"
)
_REGISTRY_POLL = (
    "the online server checks the registry every second and reloads after an apply; "
    "nothing to cache: remove it"
)

# Keys of Feast's registry mapping (`registry: {registry_type: ..., path: ...}`).
REGISTRY: dict[str, FeastKey] = {
    "registry_type": FeastKey(f"{_REGISTRY_FILE}: remove it", harmless=_is("file")),
    "registry_store_type": FeastKey(
        f"{_REGISTRY_FILE}; there is no registry store to choose: remove it"
    ),
    "cache_ttl_seconds": FeastKey(_REGISTRY_POLL, harmless=lambda _: True),
    "cache_mode": FeastKey(_REGISTRY_POLL, harmless=lambda _: True),
    "s3_additional_kwargs": FeastKey(f"{_REGISTRY_FILE}, never on S3: remove it"),
    "purge_feast_metadata": FeastKey(
        f"{_REGISTRY_FILE}, without Feast's metadata table: remove it"
    ),
    "enable_online_feature_view_versioning": FeastKey(
        "skewless versions every definition in its registry (`skewless history`) and serves "
        "the applied version: remove it"
    ),
    "mcp": FeastKey("skewless has no registry server: remove it"),
}

# Keys of Feast's Redis online store (`online_store: {type: redis, ...}`); `path` is the
# key of Feast's default online store, SQLite, whose `type` may be left out.
REDIS: dict[str, FeastKey] = {
    "redis_type": FeastKey(
        "skewless connects to one Redis server (no cluster or sentinel), given by `url`: remove it",
        harmless=_is("redis"),
    ),
    "sentinel_master": FeastKey(
        "skewless connects to one Redis server (no sentinel), given by `url`: remove it"
    ),
    "key_ttl_seconds": FeastKey(
        "skewless expires online values from each feature view's `ttl` (views without one "
        "never expire): remove it and set `ttl` on the views"
    ),
    "full_scan_for_deletion": FeastKey(
        "Feast's deletion setting: nothing to tune in skewless: remove it",
        harmless=lambda _: True,
    ),
    "skip_dedup": FeastKey(
        "skewless keeps the latest value per entity on every write, nothing to tune: remove it",
        harmless=lambda _: True,
    ),
    "path": FeastKey(f"the file of Feast's SQLite online store: {_REDIS}"),
}

_KV = "skewless's online store is Redis (`type: redis`, `url: redis://host:port`)"
_VECTOR = f"skewless has no vector search; {_REDIS}"

# Feast's online store types, by `online_store.type`.
ONLINE_STORE_TYPES: dict[str, str] = {
    "sqlite": _REDIS,
    "remote": (
        "Feast's client of a remote feature server: skewless's clients call `skewless serve` "
        "(skewless.client.OnlineClient); the repo itself uses Redis (`type: redis`, `url`)"
    ),
    **{
        name: f"{_KV}; {name} is not supported"
        for name in (
            "aerospike",
            "datastore",
            "dynamodb",
            "snowflake.online",
            "bigtable",
            "postgres",
            "hbase",
            "cassandra",
            "scylladb",
            "mysql",
            "hazelcast",
            "singlestore",
            "couchbase.online",
            "mongodb",
            "hybrid",
        )
    },
    **dict.fromkeys(("elasticsearch", "qdrant", "milvus"), _VECTOR),
}

_WAREHOUSE = (
    "skewless reads sources with Spark (FileSource for Parquet, DeltaSource) and keeps "
    "feature tables in Delta (`type: delta`, the default); export the tables to Parquet or "
    "Delta: remove it"
)

# Feast's offline store types, by `offline_store.type`.
OFFLINE_STORE_TYPES: dict[str, str] = {
    **dict.fromkeys(("file", "dask", "duckdb", "ray", "hybrid"), f"{_DELTA}: remove it"),
    "spark": (
        "Spark is skewless's only engine: its settings go in the top-level `spark:` section "
        "(`spark_conf` becomes `spark.conf`, the master `spark.master`), and the offline "
        "store is `type: delta`, the default: remove it"
    ),
    "remote": f"Feast's client of a remote offline server: {_DELTA}: remove it",
    **{
        name: f"{name} is not supported: {_WAREHOUSE}"
        for name in (
            "bigquery",
            "redshift",
            "snowflake.offline",
            "trino",
            "postgres",
            "athena",
            "mssql",
            "clickhouse",
            "couchbase.offline",
            "oracle",
        )
    },
}


def redis_connection_string(value: Any) -> str:
    """What skewless takes instead of Feast's Redis `connection_string`
    ("host:port,db=0,ssl=true,password=..."). The password itself is never repeated."""
    if not isinstance(value, str):
        return f"a Feast key: {_REDIS}"
    parts = [p.strip() for p in value.split(",") if p.strip()]
    hosts = [p for p in parts if "=" not in p]
    params = dict(p.split("=", 1) for p in parts if "=" in p)
    host = hosts[0] if hosts else "localhost:6379"
    instead = [f"`url: redis://{host}/{params.pop('db', '0')}`"]
    if params.pop("ssl", "false").lower() == "true":
        instead.append("`ssl: true`")
    if params.pop("password", None) is not None:
        instead.append("`password: ${REDIS_PASSWORD}` (the password, from the environment)")
    said = f"a Feast key: skewless takes {' and '.join(instead)}"
    if len(hosts) > 1:
        said += f"; it connects to one Redis server, not the {len(hosts)} listed"
    if params:
        said += f"; nothing takes {', '.join(sorted(params))}"
    return said


def _said(value: Any, instead: str, what: str = "key") -> str:
    """A finding's message: a Feast key (its value, when short and scalar), then what
    skewless uses instead."""
    shown = repr(value)
    if isinstance(value, str | int | float | bool) and len(shown) <= 60:
        return f"a Feast {what} ({shown}): {instead}"
    return f"a Feast {what}: {instead}"


def feast_findings(data: Mapping[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
    """The Feast-only keys of a parsed feature_store.yaml (in the order of the file), and
    the document without them."""
    findings: list[Finding] = []
    rest: dict[str, Any] = {}

    def found(path: str, key: FeastKey, value: Any) -> None:
        findings.append(Finding(path, _said(value, key.instead), refused=not key.harmless(value)))

    def refused(path: str, message: str) -> None:
        findings.append(Finding(path, message, refused=True))

    for name, value in data.items():
        key = str(name)
        if key in TOP_LEVEL:
            found(key, TOP_LEVEL[key], value)
        elif key == "registry" and isinstance(value, Mapping):
            rest[key] = _registry(value, found)
        elif key == "online_store":
            section = _online_store(value, found, refused)
            if section is not None:
                rest[key] = section
        elif key == "offline_store":
            section = _offline_store(value, refused)
            if section is not None:
                rest[key] = section
        else:
            rest[key] = value
    return findings, rest


_Found = Callable[[str, FeastKey, Any], None]
_Refused = Callable[[str, str], None]


def _registry(section: Mapping[Any, Any], found: _Found) -> dict[Any, Any]:
    kept = {k: v for k, v in section.items() if k not in REGISTRY}
    for k, v in section.items():
        if k in REGISTRY:
            found(f"registry.{k}", REGISTRY[k], v)
            if k == "registry_type" and not REGISTRY[k].harmless(v):
                kept.pop("path", None)  # a SQL URL or remote address: the type's message covers it
    return kept


def _online_store(value: Any, found: _Found, refused: _Refused) -> Any:
    """The section without Feast's keys; None when the whole section is Feast's."""
    if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
        refused(
            "online_store",
            "a Feast value (no online store): skewless always has one, Redis; leave the key "
            "out for the embedded server, or set `type: redis` and `url`",
        )
        return None
    if _feast_store("online_store", value, ONLINE_STORE_TYPES, _REDIS, refused):
        return None
    if not isinstance(value, Mapping):
        return value
    kept: dict[Any, Any] = {}
    for k, v in value.items():
        if k == "connection_string":
            refused("online_store.connection_string", redis_connection_string(v))
        elif k in REDIS:
            found(f"online_store.{k}", REDIS[k], v)
        else:
            kept[k] = v
    return kept


def _offline_store(value: Any, refused: _Refused) -> Any:
    """The section without Feast's keys; None when the whole section is Feast's."""
    if _feast_store("offline_store", value, OFFLINE_STORE_TYPES, _DELTA, refused):
        return None
    return value


def _feast_store(
    section: str, value: Any, types: Mapping[str, str], instead: str, refused: _Refused
) -> bool:
    """Whether the store `section` names is one of Feast's (a type of `types`, or a
    `feast.` class path), refused with what skewless uses instead."""
    kind = value if isinstance(value, str) else None
    if isinstance(value, Mapping):
        kind = value.get("type")
    if not isinstance(kind, str):
        return False
    if kind.lower() in types:
        refused(f"{section}.type", _said(kind, types[kind.lower()], "store"))
        return True
    if kind.startswith("feast."):
        refused(f"{section}.type", _said(kind, instead, "class"))
        return True
    return False
