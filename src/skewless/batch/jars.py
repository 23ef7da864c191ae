"""The Delta Lake jars: fetched once from Maven Central, verified, cached.

Only `delta-spark` and `delta-storage` are needed for path-based Delta tables; Spark
itself provides Hadoop, Parquet, Jackson and logging. Resolving the full Maven graph
(as `spark.jars.packages` does) would put older copies of those next to Spark's own on
the classpath, so skewless fetches the two jars itself and passes them as `spark.jars`.
On a cluster, set `spark.jars` or `spark.jars.packages` yourself and this is skipped.

    python -m skewless.batch.jars      # fetch now (the setup step does this)

Cache: $SKEWLESS_JARS_DIR, else ~/.cache/skewless/jars. Repository: $SKEWLESS_MAVEN_REPO,
else Maven Central.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import pyspark

from skewless.errors import SparkSetupError

DELTA_VERSION = "4.4.0"
SCALA = "2.13"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


def spark_minor() -> str:
    return ".".join(pyspark.__version__.split(".")[:2])


def delta_artifacts() -> list[tuple[str, str, str]]:
    """(group, artifact, version) of every jar Delta needs on this pyspark."""
    return [
        ("io.delta", f"delta-spark_{spark_minor()}_{SCALA}", DELTA_VERSION),
        ("io.delta", "delta-storage", DELTA_VERSION),
    ]


def cache_dir() -> Path:
    env = os.environ.get("SKEWLESS_JARS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "skewless" / "jars"


def _url(group: str, artifact: str, version: str, suffix: str = "") -> str:
    repo = os.environ.get("SKEWLESS_MAVEN_REPO", MAVEN_CENTRAL).rstrip("/")
    return f"{repo}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar{suffix}"


def _fetch(url: str, timeout_s: float = 120.0) -> bytes:
    if not url.startswith(("https://", "http://", "file://")):
        raise SparkSetupError(f"refusing to fetch jars from {url!r}")
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - scheme checked
        body: bytes = response.read()
        return body


def ensure_delta_jars() -> list[Path]:
    """Paths of the Delta jars, downloading (and SHA-1 checking) any that are missing."""
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for group, artifact, version in delta_artifacts():
        path = target / f"{artifact}-{version}.jar"
        if not path.is_file():
            url = _url(group, artifact, version)
            try:
                body = _fetch(url)
                expected = _fetch(url + ".sha1").decode().split()[0].strip()
            except OSError as exc:
                raise SparkSetupError(
                    f"cannot download {url}: {exc}. Fetch it by hand into {target} or set "
                    "SKEWLESS_MAVEN_REPO to a reachable Maven repository."
                ) from exc
            actual = hashlib.sha1(body, usedforsecurity=False).hexdigest()
            if actual != expected:
                raise SparkSetupError(f"{url}: SHA-1 {actual} does not match {expected}")
            # Write then rename, so a concurrent or interrupted fetch never leaves half a jar.
            with tempfile.NamedTemporaryFile(dir=target, delete=False, suffix=".part") as tmp:
                tmp.write(body)
            Path(tmp.name).replace(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in ensure_delta_jars():
        sys.stdout.write(f"{p}\n")
