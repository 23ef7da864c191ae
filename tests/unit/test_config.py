from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skewless.config import load_config, parse_config
from skewless.errors import ConfigError


def test_config_defaults() -> None:
    cfg = parse_config({"project": "p"}, "fs.yaml", environ={})
    assert cfg.registry.type == "sqlite"
    assert cfg.offline_store.type == "delta"
    assert cfg.spark.master == "local[*]"
    assert cfg.online_store.url is None


def test_config_registry_shorthand_and_spark_conf_values() -> None:
    cfg = parse_config(
        {"project": "p", "registry": "r.db", "spark": {"conf": {"a": 4, "b": True}}},
        "f",
        environ={},
    )
    assert cfg.registry.path == "r.db"
    assert cfg.spark.conf == {"a": "4", "b": "true"}


def test_config_env_overrides_and_references() -> None:
    env = {"SKEWLESS_ONLINE_STORE_URL": "redis://h:1/0", "PW": "s3cret"}
    raw = {"project": "p", "online_store": {"type": "redis", "password": "${PW}"}}
    cfg = parse_config(raw, "f", environ=env)
    assert cfg.online_store.url == "redis://h:1/0"
    assert cfg.online_store.password == "s3cret"


def test_config_env_reference_to_missing_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(
        ConfigError, match="online_store.password: environment variable NOPE_NOT_SET"
    ):
        parse_config(
            {"project": "p", "online_store": {"password": "${NOPE_NOT_SET}"}}, "f", environ={}
        )
    raw = {"project": "p", "online_store": {"url": "${NOPE_NOT_SET:-redis://x}"}}
    cfg = parse_config(raw, "f", environ={})
    assert cfg.online_store.url == "redis://x"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"project": "p", "offline_store": {"type": "bigquery"}}, "offline_store"),
        ({"project": "p", "spark": {"mastr": "x"}}, "spark.mastr"),
        ({"project": "bad name"}, "project"),
        ({}, "project"),
    ],
)
def test_config_errors_point_at_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, "feature_store.yaml", environ={})


def test_load_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature_store.yaml: not found"):
        load_config(tmp_path)
    (tmp_path / "feature_store.yaml").write_text("project: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)


def test_config_ssl_turns_redis_urls_into_rediss() -> None:
    cfg = parse_config({"project": "p", "online_store": {"ssl": True}}, "f", environ={})
    assert cfg.online_store.connection_url("redis://h:1/0") == "rediss://h:1/0"
    assert cfg.online_store.connection_url("unix:///s.sock") == "unix:///s.sock"
    plain = parse_config({"project": "p"}, "f", environ={})
    assert plain.online_store.connection_url("redis://h:1/0") == "redis://h:1/0"


def test_driver_write_max_keys_defaults_and_rejects_negatives() -> None:
    cfg = parse_config({"project": "p"}, "f", environ={})
    assert cfg.online_store.driver_write_max_keys == 200_000
    raw = {"project": "p", "online_store": {"driver_write_max_keys": -1}}
    with pytest.raises(ConfigError, match="online_store.driver_write_max_keys"):
        parse_config(raw, "f", environ={})


def test_config_reports_every_problem_with_its_path() -> None:
    raw = {
        "project": "p",
        "spark": {"master": 7, "conf_fil": "x.conf"},
        "online_store": {"url": ["redis://h"], "driver_write_max_keys": -1},
        "serving": {"tls": {"cert_file": "c.pem"}},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "feature_store.yaml", environ={})
    assert info.value.problems == (
        "spark.master: Input should be a valid string (got 7)",
        "spark.conf_fil: unknown key; did you mean 'conf_file'?",
        "online_store.url: Input should be a valid string",
        "online_store.driver_write_max_keys: Input should be greater than or equal to 0 (got -1)",
        "serving.tls.key_file: missing (required)",
    )
    assert str(info.value) == "feature_store.yaml: 5 problems:\n" + "\n".join(
        f"  {p}" for p in info.value.problems
    )


def test_config_one_problem_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({}, "feature_store.yaml", environ={})
    assert str(info.value) == "feature_store.yaml: project: missing (required)"
    assert info.value.problems == ("project: missing (required)",)
    assert ConfigError("f.conf", "line 1: bad").problems == ("line 1: bad",)


def test_config_unset_variables_are_listed_with_the_other_problems() -> None:
    raw = {
        "project": "${PROJECT_NAME}",
        "offline_store": {"type": "parquet"},
        "online_store": {"password": "${REDIS_PW}", "url": "${REDIS_URL:-redis://h:1/0}"},
        "serving": {"max_entity_rows": "${MAX_ROWS}"},
        "hosts": ["a", "${HOST_B}"],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "feature_store.yaml", environ={"PROJECT_NAME": "rides"})
    assert info.value.problems == (
        "offline_store.type: unknown offline store type 'parquet'; skewless's: 'delta'",
        "online_store.password: environment variable REDIS_PW is not set",
        # an unset variable is its field's one problem: not also "not a valid integer"
        "serving.max_entity_rows: environment variable MAX_ROWS is not set",
        "hosts[1]: environment variable HOST_B is not set",
        "hosts: unknown key",
    )


def test_config_problem_from_an_env_override_names_the_variable() -> None:
    env = {"SKEWLESS_REGISTRY_PATH": "s3://bucket/registry.db"}
    with pytest.raises(ConfigError) as info:
        parse_config({"project": "p", "registry": "data/registry.db"}, "f", environ=env)
    assert info.value.problems == (
        "registry.path: 's3://bucket/registry.db' is a URI: skewless's registry is a SQLite "
        "file, given by its path (from SKEWLESS_REGISTRY_PATH)",
    )
    with pytest.raises(ConfigError) as info:
        parse_config({"project": "p", "registry": "postgresql://u:pw@db/reg"}, "f", environ={})
    assert info.value.problems == (
        "registry.path: 'postgresql://...@db/reg' is a URI: skewless's registry is a SQLite "
        "file, given by its path",
    )


def test_config_password_values_are_never_shown() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"project": "p", "online_store": {"password": 12345}}, "f", environ={})
    (problem,) = info.value.problems
    assert problem.startswith("online_store.password: Input should be a valid string")
    assert "12345" not in problem


@pytest.mark.parametrize(
    ("raw", "environ"),
    [
        ({"online_store": "${REDIS_URL}"}, {"REDIS_URL": "redis://:hunter2@cache:6379/0"}),
        ({"online_store": {"url": ["redis://u:hunter2@h:1"]}}, {}),
        ({"online_store": {"url": "redis://u:hunter2@h:1", "ssl": "maybe"}}, {}),
        ({"offline_store": "s3a://key:hunter2@bucket/offline"}, {}),
        ({"registry": "s3://key:hunter2@bucket/registry.db"}, {}),
        ({"spark": {"master": 3, "conf": "spark://u:hunter2@m:7077"}}, {}),
    ],
)
def test_config_problems_never_show_a_password(
    raw: dict[str, Any], environ: dict[str, str]
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"project": "p", **raw}, "feature_store.yaml", environ=environ)
    assert "hunter2" not in str(info.value)
    assert info.value.problems  # the problem is still reported, without the secret
