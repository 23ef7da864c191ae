"""The test session's driver maps the class archive that setup builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from skewless.batch import class_archive


@pytest.mark.spark
def test_the_driver_maps_the_class_archive(spark: SparkSession) -> None:
    archive = class_archive.archive_path()
    assert archive is not None, "Spark runs, so there is a java"
    if not archive.is_file():
        pytest.skip(f"no class archive at {archive}: python -m skewless.batch.class_archive")
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert str(archive) in maps, f"the driver (pid {pid}) did not map {archive}"
