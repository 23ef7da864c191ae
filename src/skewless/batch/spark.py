"""The only module that builds SparkSessions.

Settings come in layers, later ones winning: skewless's defaults (DEFAULTS), its
required settings (Delta extensions, UTC), the `spark.conf_file` of feature_store.yaml
(the shipped spark-conf/spark-defaults.conf), then `spark.conf`. The session time zone
is always UTC: timestamps mean instants, and naive ones are read as UTC.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from pyspark.sql import SparkSession

from skewless.batch import class_archive
from skewless.batch.jars import ensure_delta_jars
from skewless.batch.java import ensure_java
from skewless.config import SparkConfig, resolve_path
from skewless.errors import ConfigError, SparkSetupError

DEFAULTS: dict[str, str] = {
    # PySpark's DataFrame debugging records the Python call site of every DataFrame and
    # Column call in the JVM, which costs several py4j round trips per call, a visible
    # share of a join's planning (docs/performance.md). The call sites it records would
    # all lie inside skewless.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}

REQUIRED: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

_lock = threading.Lock()


def read_conf_file(path: str) -> dict[str, str]:
    """Parse a spark-defaults.conf: `key value` (or `key=value`) lines, # comments."""
    conf: dict[str, str] = {}
    for n, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1) if "=" not in line.split(None, 1)[0] else line.split("=", 1)
        if len(parts) != 2:
            raise ConfigError(path, f"line {n}: expected 'key value', got {raw!r}")
        conf[parts[0].strip()] = parts[1].strip()
    return conf


def session_conf(config: SparkConfig, repo_path: Path) -> dict[str, str]:
    conf = {**DEFAULTS, **REQUIRED}
    if config.conf_file:
        path = resolve_path(repo_path, config.conf_file)
        if not Path(path).is_file():
            raise ConfigError(path, "spark.conf_file does not exist")
        conf.update(read_conf_file(path))
    conf.update(config.conf)
    if "spark.jars.packages" not in conf and "delta" not in conf.get("spark.jars", ""):
        jars = [str(p) for p in ensure_delta_jars()]
        extra = [j for j in conf.get("spark.jars", "").split(",") if j]
        conf["spark.jars"] = ",".join(jars + extra)
    return conf


def get_spark(config: SparkConfig, repo_path: Path) -> SparkSession:
    """The process's SparkSession: the active one if a caller (a test, a notebook, a
    spark-submit job) made it, else a new one from the repo's config."""
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return _in_utc(active)
        if os.environ.get("PYSPARK_GATEWAY_PORT"):
            # Launched by spark-submit: the JVM is up with the submit's settings.
            return _in_utc(SparkSession.builder.appName(config.app_name).getOrCreate())
        os.environ.setdefault("PYSPARK_PYTHON", _python())
        ensure_java()
        builder = SparkSession.builder.master(config.master).appName(config.app_name)
        conf = session_conf(config, repo_path)
        # A class archive of an earlier run's classes, when one matches this runtime.
        options = conf.get("spark.driver.extraJavaOptions", "")
        conf["spark.driver.extraJavaOptions"] = class_archive.with_archive(options)
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel(os.environ.get("SKEWLESS_SPARK_LOG_LEVEL", "ERROR"))
        return _in_utc(session)


def _in_utc(session: SparkSession) -> SparkSession:
    """`session`, if it reads and shows times in UTC: the point-in-time join, the time
    parts of expressions (hour(), day_of_week(), ...) and timestamps without a zone all
    assume it, and another zone would shift them without an error."""
    zone = session.conf.get("spark.sql.session.timeZone")
    if zone != "UTC":
        raise SparkSetupError(
            f"the Spark session's spark.sql.session.timeZone is {zone!r}; skewless needs "
            "'UTC' (set it so in the session, or remove the setting from the config)"
        )
    return session


def local_master(spark: SparkSession) -> bool:
    """Whether the session runs on a local master: its executors are threads of the
    driver's process, which shares the driver's file system and cannot lose an executor
    on its own."""
    return (spark.sparkContext.master or "").startswith("local")


def _python() -> str:
    return sys.executable
