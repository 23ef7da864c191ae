from __future__ import annotations

from pathlib import Path

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
