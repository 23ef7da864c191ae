"""A Feast feature_store.yaml: every Feast-only key says what skewless uses instead, all in
one error together with the file's other problems; keys that ask for what skewless does
anyway are ignored with a warning the CLI shows."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from skewless import config as config_module
from skewless.cli.main import app
from skewless.config import parse_config
from skewless.errors import ConfigError
from skewless.feast_config import OFFLINE_STORE_TYPES, ONLINE_STORE_TYPES

# The feature_store.yaml `feast init` writes (sdk/python/feast/templates/local/
# feature_repo/feature_store.yaml in feast-dev/feast), comments included.
FEAST_TEMPLATE = """\
project: my_project
# By default, the registry is a file (but can be turned into a more scalable SQL-backed registry)
registry: data/registry.db
# The provider primarily specifies default offline / online stores & storing the registry in a given cloud
provider: local
online_store:
    type: sqlite
    path: data/online_store.db
entity_key_serialization_version: 3
# By default, no_auth for authentication and authorization, other possible values kubernetes and oidc. Refer the documentation for more details.
auth:
    type: no_auth
"""  # noqa: E501 - Feast's file as it is

runner = CliRunner()


def _problems(raw: dict[str, Any], environ: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "feature_store.yaml", environ=environ or {})
    assert info.value.path == "feature_store.yaml"
    return info.value.problems


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture(autouse=True)
def _warnings_not_yet_given() -> None:
    config_module._warned.clear()  # a warning is given once a process


def test_a_feast_key_warns_once_a_process(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="skewless.config")
    for _ in range(2):
        parse_config({"project": "p", "provider": "local"}, "feature_store.yaml", environ={})
    assert len(_warnings(caplog)) == 1


def test_feast_template_is_refused_for_sqlite_and_its_harmless_keys_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="skewless.config")
    problems = _problems(yaml.safe_load(FEAST_TEMPLATE))
    assert problems == (
        "online_store.type: a Feast store ('sqlite'): skewless's online store is Redis: "
        "`type: redis` with `url: redis://host:port`, or no url for the embedded server",
    )
    assert _warnings(caplog) == [
        "feature_store.yaml: provider: ignored, a Feast key ('local'): skewless always runs "
        "locally or on the Spark master set in `spark.master`: remove it",
        "feature_store.yaml: entity_key_serialization_version: ignored, a Feast key (3): "
        "skewless's online key encoding is fixed (online data Feast wrote is not read: "
        "materialize again with skewless): remove it",
        "feature_store.yaml: auth: ignored, a Feast key: `skewless serve` has no token "
        "authentication; it authenticates clients with mutual TLS "
        "(`serving.tls.client_ca_file`): remove it",
    ]


def test_feast_keys_are_listed_with_the_other_problems_in_file_order() -> None:
    raw = {
        "project": "p",
        "provider": "gcp",
        "spark": {"mastr": "local[2]"},
        "online_store": {"type": "redis", "connection_string": "localhost:6379"},
        "batch_engine": {"type": "spark.engine"},
        "serving": {"max_features": 0},
    }
    problems = _problems(raw)
    assert [p.split(":")[0] for p in problems] == [
        "provider",
        "spark.mastr",
        "online_store.connection_string",
        "batch_engine",
        "serving.max_features",
    ]
    assert problems[0].startswith("provider: a Feast key ('gcp'): skewless always runs locally")
    assert "did you mean 'master'?" in problems[1]
    assert "Extra inputs" not in "\n".join(problems)


@pytest.mark.parametrize(
    ("raw", "path", "says", "refused"),
    [
        ({"provider": "aws"}, "provider", "`spark.master`", True),
        ({"provider": "local"}, "provider", "`spark.master`", False),
        (
            {"entity_key_serialization_version": 2},
            "entity_key_serialization_version",
            "fixed",
            False,
        ),
        ({"batch_engine": "local"}, "batch_engine", "always runs on Spark", True),
        ({"batch_engine_config": {"type": "local"}}, "batch_engine_config", "on Spark", True),
        ({"feature_server": {"type": "local"}}, "feature_server", "`skewless serve`", True),
        ({"flags": {"alpha_features": True}}, "flags", "every feature is on", False),
        ({"auth": {"type": "no_auth"}}, "auth", "mutual TLS", False),
        ({"auth": "no_auth"}, "auth", "mutual TLS", False),
        ({"auth": {"type": "oidc", "client_id": "c"}}, "auth", "mutual TLS", True),
        ({"coerce_tz_aware": True}, "coerce_tz_aware", "naive timestamps as UTC", False),
        ({"coerce_tz_aware": False}, "coerce_tz_aware", "naive timestamps as UTC", True),
        ({"repo_path": "/srv/repo"}, "repo_path", "-c/--repo", True),
        ({"go_feature_serving": False}, "go_feature_serving", "`skewless serve`", False),
        ({"go_feature_serving": True}, "go_feature_serving", "`skewless serve`", True),
        ({"go_feature_retrieval": True}, "go_feature_retrieval", "serving core", True),
        ({"project_description": "rides"}, "project_description", "no project description", False),
        ({"materialization": {"online_write_batch_size": 10}}, "materialization", "latest", True),
        ({"openlineage": {"enabled": True}}, "openlineage", "OpenLineage", True),
        ({"mlflow": {"enabled": True}}, "mlflow", "log_to_mlflow", True),
        ({"embedding_model": {"model": "m"}}, "embedding_model", "vector search", True),
        ({"online_store": None}, "online_store", "always has one", True),
        ({"online_store": "null"}, "online_store", "always has one", True),
        ({"online_store": "sqlite"}, "online_store.type", "online store is Redis", True),
        ({"online_store": {"path": "data/online.db"}}, "online_store.path", "SQLite", True),
        (
            {"online_store": {"type": "feast.infra.online_stores.sqlite.SqliteOnlineStore"}},
            "online_store.type",
            "a Feast class",
            True,
        ),
        ({"online_store": {"redis_type": "redis"}}, "online_store.redis_type", "one Redis", False),
        (
            {"online_store": {"redis_type": "redis_cluster"}},
            "online_store.redis_type",
            "no cluster",
            True,
        ),
        (
            {"online_store": {"sentinel_master": "m"}},
            "online_store.sentinel_master",
            "sentinel",
            True,
        ),
        ({"online_store": {"key_ttl_seconds": 60}}, "online_store.key_ttl_seconds", "`ttl`", True),
        (
            {"online_store": {"full_scan_for_deletion": True}},
            "online_store.full_scan_for_deletion",
            "nothing to tune",
            False,
        ),
        ({"offline_store": "file"}, "offline_store.type", "Delta", True),
        (
            {"offline_store": {"type": "spark", "spark_conf": {"a": "b"}}},
            "offline_store.type",
            "`spark_conf` becomes `spark.conf`",
            True,
        ),
        (
            {"registry": {"registry_type": "file", "path": "r.db"}},
            "registry.registry_type",
            "SQLite",
            False,
        ),
        (
            {"registry": {"registry_type": "sql", "path": "postgresql://u@h/db"}},
            "registry.registry_type",
            "SQLite file",
            True,
        ),
        (
            {"registry": {"path": "r.db", "registry_store_type": "S3RegistryStore"}},
            "registry.registry_store_type",
            "no registry store",
            True,
        ),
        (
            {"registry": {"path": "r.db", "cache_ttl_seconds": 60}},
            "registry.cache_ttl_seconds",
            "every second",
            False,
        ),
        (
            {"registry": {"path": "r.db", "cache_mode": "thread"}},
            "registry.cache_mode",
            "every second",
            False,
        ),
    ],
)
def test_feast_key_says_what_skewless_uses_instead(
    raw: dict[str, Any],
    path: str,
    says: str,
    refused: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="skewless.config")
    doc = {"project": "p", **raw}
    if refused:
        (problem,) = _problems(doc)
        assert problem.startswith(f"{path}: a Feast ")
        assert says in problem
        assert not _warnings(caplog)
    else:
        parse_config(doc, "feature_store.yaml", environ={})
        (warning,) = _warnings(caplog)
        assert warning.startswith(f"feature_store.yaml: {path}: ignored, a Feast key")
        assert says in warning


@pytest.mark.parametrize("kind", sorted(ONLINE_STORE_TYPES))
def test_every_feast_online_store_type_is_explained(kind: str) -> None:
    (problem,) = _problems({"project": "p", "online_store": {"type": kind, "host": "h"}})
    assert problem.startswith(f"online_store.type: a Feast store ({kind!r}): ")
    assert "Redis" in problem or "skewless serve" in problem


@pytest.mark.parametrize("kind", sorted(OFFLINE_STORE_TYPES))
def test_every_feast_offline_store_type_is_explained(kind: str) -> None:
    (problem,) = _problems({"project": "p", "offline_store": {"type": kind, "database": "d"}})
    assert problem.startswith(f"offline_store.type: a Feast store ({kind!r}): ")
    assert "Delta" in problem or "delta" in problem


@pytest.mark.parametrize(
    ("connection_string", "instead"),
    [
        ("localhost:6379", "skewless takes `url: redis://localhost:6379/0`"),
        (
            "redis.internal:6380,db=2,ssl=true,password=hunter2",
            "skewless takes `url: redis://redis.internal:6380/2` and `ssl: true` and "
            "`password: ${REDIS_PASSWORD}` (the password, from the environment)",
        ),
        (
            "r1:6379,r2:6379,skip_full_coverage_check=true",
            "skewless takes `url: redis://r1:6379/0`; it connects to one Redis server, not "
            "the 2 listed; nothing takes skip_full_coverage_check",
        ),
    ],
)
def test_feast_redis_connection_string_gets_its_url(connection_string: str, instead: str) -> None:
    online = {"type": "redis", "connection_string": connection_string}
    (problem,) = _problems({"project": "p", "online_store": online})
    assert problem == f"online_store.connection_string: a Feast key: {instead}"
    assert "hunter2" not in problem


def test_feast_values_from_environment_are_judged_after_expansion() -> None:
    raw = {"project": "p", "online_store": {"connection_string": "${REDIS_CS}"}}
    (problem,) = _problems(raw, environ={"REDIS_CS": "cache:6379,password=s3cret"})
    assert "`url: redis://cache:6379/0`" in problem
    assert "s3cret" not in problem


def test_cli_plan_on_a_feast_repo_shows_every_problem(tmp_path: Path) -> None:
    extra = "spark:\n  mastr: local\nserving:\n  max_entity_rows: 0\n"
    (tmp_path / "feature_store.yaml").write_text(FEAST_TEMPLATE + extra)
    result = runner.invoke(app, ["plan", "-c", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"Error: {tmp_path / 'feature_store.yaml'}: 3 problems:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  online_store.type",
        "  spark.mastr",
        "  serving.max_entity_rows",
    ]
    assert "online store is Redis" in lines[1]


def test_cli_shows_ignored_feast_keys(tmp_path: Path) -> None:
    # A process of its own: pytest's log capture would otherwise take the warnings.
    (tmp_path / "feature_store.yaml").write_text(
        "project: rides\nprovider: local\nentity_key_serialization_version: 3\n"
    )
    command = [sys.executable, "-m", "skewless.cli.main", "list", "-c", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Nothing applied yet" in done.stdout
    warned = [line for line in done.stderr.splitlines() if "ignored, a Feast key" in line]
    assert [line.split(": ")[1] for line in warned] == [
        "provider",
        "entity_key_serialization_version",
    ]
