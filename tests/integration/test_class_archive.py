"""The class archive: the test session's driver maps the one setup builds, and an
archive no JVM can map is never moved into place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from skewless.batch import class_archive
from skewless.errors import SparkSetupError


@pytest.mark.spark
def test_the_driver_maps_the_class_archive(spark: SparkSession) -> None:
    archive = class_archive.archive_path()
    assert archive is not None, "Spark runs, so there is a java"
    if not archive.is_file():
        # CI expects one (.ci/run): a build that fails there must not pass as a skip.
        assert not os.environ.get("SKEWLESS_EXPECT_CDS"), f"setup built no archive at {archive}"
        pytest.skip(f"no class archive at {archive}: python -m skewless.batch.class_archive")
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert str(archive) in maps, f"the driver (pid {pid}) did not map {archive}"


def test_an_archive_no_jvm_maps_is_not_moved_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKEWLESS_CDS_DIR", str(tmp_path / "cds"))
    java = shutil.which("java") or ""
    assert java, "the integration tests run where Spark runs"

    def dump_garbage(dump: Path) -> dict[str, str]:  # what a JVM killed mid-dump leaves
        dump.write_bytes(b"\0" * 4096)
        return {"java": java, "class_path": "."}

    monkeypatch.setattr(class_archive, "_dump", dump_garbage)
    with pytest.raises(SparkSetupError, match="does not map"):
        class_archive.build()
    assert list((tmp_path / "cds").iterdir()) == []  # no archive, no sidecar, no temp folder
