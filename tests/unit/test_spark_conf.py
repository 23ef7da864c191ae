from __future__ import annotations

from pathlib import Path

import pytest

from skewless.batch.spark import read_conf_file, session_conf
from skewless.config import SparkConfig
from skewless.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_spark_defaults_parse() -> None:
    conf = read_conf_file(str(ROOT / "spark-conf/spark-defaults.conf"))
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"


def test_session_conf_layers_file_then_yaml(tmp_path: Path) -> None:
    (tmp_path / "s.conf").write_text("# c\nspark.a 1\nspark.b=2\nspark.jars.packages x:y:1\n")
    cfg = SparkConfig(conf_file="s.conf", conf={"spark.b": "3"})
    conf = session_conf(cfg, tmp_path)
    assert (conf["spark.a"], conf["spark.b"]) == ("1", "3")
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.python.sql.dataFrameDebugging.enabled"] == "false"  # a default
    assert "spark.jars" not in conf  # a cluster's packages setting replaces the local jars


def test_session_conf_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spark.conf_file does not exist"):
        session_conf(SparkConfig(conf_file="nope.conf"), tmp_path)
    (tmp_path / "bad.conf").write_text("lonely\n")
    with pytest.raises(ConfigError, match="line 1"):
        read_conf_file(str(tmp_path / "bad.conf"))


def test_session_conf_defaults_yield_to_the_repo(tmp_path: Path) -> None:
    cfg = SparkConfig(conf={"spark.python.sql.dataFrameDebugging.enabled": "true"})
    conf = session_conf(cfg, tmp_path)
    assert conf["spark.python.sql.dataFrameDebugging.enabled"] == "true"
