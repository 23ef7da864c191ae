"""Pinning a training set's inputs: which Delta version and which files it reads.

A Delta source is pinned to a version (the newest, or the one current at a time); a
local file source to its exact files, each with size, modification time and SHA-256 of
its content, so files added later are not read when the set is built again and a pinned
file that changed is detected (`check_pin`). A file source at a URI is pinned by the
files Spark lists there, without sizes or hashes (reading every byte of remote data to
hash it would cost more than the training set).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from skewless.definitions import DeltaSource, FeatureView
from skewless.errors import AsOfError, SourceNotFoundError
from skewless.offline.manifest import FilePin, InputPin
from skewless.source_schema import shown_file, source_files
from skewless.timeutil import from_micros, iso_utc, utc_micros

_CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# A file's hash, by its identity and every time stamp the system keeps (ctime changes on
# any write and cannot be set back): a retrieval then hashes only files new or changed
# since this process last read them. Reproduce's checks hash afresh (check_pin).
_KNOWN: dict[tuple[str, int, int, int, int, int], str] = {}
_KNOWN_MAX = 100_000


def _cached_sha256(path: str, stat: os.stat_result) -> str:
    key = (path, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    found = _KNOWN.get(key)
    if found is None:
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        found = _KNOWN[key] = file_sha256(path)
    return found


def forget_hashes() -> None:
    """Empty the process's cache of file hashes (a benchmark's first build)."""
    _KNOWN.clear()


def _local(uri: str) -> str:
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def pin_input(
    spark: SparkSession, view: FeatureView, repo_path: Path, at: datetime | None = None
) -> InputPin:
    """What a retrieval reads of `view`'s source now, or as it stood at `at` (a Delta
    table's version current then; the files modified at or before then)."""
    src = view.source
    location = src.resolve(repo_path)
    remote = "://" in location
    if not remote and not Path(location).exists():
        raise SourceNotFoundError(src.path, view.name)
    if isinstance(src, DeltaSource):
        version, committed = _delta_version(spark, location, at, src.path)
        return InputPin(
            view=view.name,
            format="delta",
            path=src.path,
            location=location,
            delta_version=version,
            delta_committed_at=committed,
        )
    if remote:
        files = tuple(_remote_files(spark, location, src.file_format))
    else:
        files = tuple(_local_files(src.path, location, at))
    if not files:
        if at is None:
            raise SourceNotFoundError(src.path, view.name)  # a folder without a data file
        raise AsOfError(
            f"source {src.path} of feature view '{view.name}' has no file modified at or "
            f"before {iso_utc(at)}"
        )
    return InputPin(
        view=view.name, format=src.file_format, path=src.path, location=location, files=files
    )


def _local_files(written: str, location: str, at: datetime | None) -> list[FilePin]:
    limit_ns = None if at is None else utc_micros(at) * 1000 + 999
    pins = []
    for file in source_files(location):
        stat = os.stat(file)
        if limit_ns is not None and stat.st_mtime_ns > limit_ns:
            continue
        pins.append(
            FilePin(
                path=shown_file(written, location, file),
                location=file,
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                sha256=_cached_sha256(file, stat),
            )
        )
    return pins


def _remote_files(spark: SparkSession, location: str, file_format: str) -> list[FilePin]:
    """The files under a URI as Hadoop's file system lists them (the files Spark reads:
    names starting with `.` or `_` left out), with sizes and modification times."""
    pins = []
    root, listed = _listing(spark, location)
    for uri, size, mtime_ms in listed:
        rest = uri[len(root.rstrip("/")) :].strip("/")
        if any(part.startswith((".", "_")) for part in rest.split("/") if part):
            continue
        pins.append(
            FilePin(path=uri, location=uri, size=size, mtime_ns=mtime_ms * 1_000_000, sha256=None)
        )
    return sorted(pins, key=lambda p: p.location)


def _listing(spark: SparkSession, location: str) -> tuple[str, list[tuple[str, int, int]]]:
    """`location` as the file system names it (`file:///x` is `file:/x`), and the (URI,
    size, modification time in ms) of every file at or under it."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(location)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    root = str(fs.makeQualified(path).toString())
    found = []
    files = fs.listFiles(path, True)
    while files.hasNext():
        status = files.next()
        uri = str(status.getPath().toString())
        found.append((uri, int(status.getLen()), int(status.getModificationTime())))
    return root, found


def _remote_status(spark: SparkSession, uri: str) -> tuple[int, int] | None:
    """(size, modification time in ms) of the file at `uri`, None when it is gone."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return None
    status = fs.getFileStatus(path)
    return int(status.getLen()), int(status.getModificationTime())


def _delta_version(
    spark: SparkSession, location: str, at: datetime | None, written: str
) -> tuple[int, datetime]:
    """(version, commit time) of the newest version, or of the newest committed at or
    before `at`. Commit times are read as UTC microseconds: a collected Spark timestamp
    would be a naive datetime in the driver process's local zone."""
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    table = DeltaTable.forPath(spark, location)
    history = table.history(1) if at is None else table.history()
    rows = [
        (int(r["version"]), int(r["us"]))
        for r in history.select("version", F.unix_micros("timestamp").alias("us")).collect()
    ]
    if at is None:
        return max(rows)[0], from_micros(max(rows)[1])
    chosen = [r for r in rows if r[1] <= utc_micros(at)]
    if not chosen:
        first = from_micros(min(us for _, us in rows))
        raise AsOfError(
            f"Delta table {written} has no version at or before {iso_utc(at)} (its oldest "
            f"version in the log was committed at {first.isoformat()})"
        )
    version, us = max(chosen)
    return version, from_micros(us)


# --- checking pins ----------------------------------------------------------------------


@dataclass(frozen=True)
class PinProblem:
    """Why a pinned input cannot be read as it was: `kind` is "changed" (a file's content
    differs: the set can be built, with other rows), or "missing" (a file deleted, a
    Delta version vacuumed or out of the log: it cannot be built)."""

    input: InputPin
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.input.path} (feature view '{self.input.view}'): {self.detail}"


def check_pin(spark: SparkSession, pin: InputPin) -> list[PinProblem]:
    """What differs between `pin` and the input as it is now (nothing: an empty list).
    A file source's other files (appended later) are not its concern."""
    if pin.delta_version is not None:
        return _check_delta(spark, pin)
    problems = []
    for file in pin.files or ():
        if file.sha256 is None:
            problems += _check_remote(spark, pin, file)
            continue
        try:
            stat = os.stat(file.location)
        except FileNotFoundError:
            problems.append(PinProblem(pin, "missing", f"pinned file {file.path} was deleted"))
            continue
        if stat.st_size != file.size:
            problems.append(
                PinProblem(
                    pin,
                    "changed",
                    f"pinned file {file.path} changed: {file.size:,} bytes when pinned, "
                    f"{stat.st_size:,} now",
                )
            )
        elif file_sha256(file.location) != file.sha256:
            problems.append(
                PinProblem(
                    pin, "changed", f"pinned file {file.path} changed: its content hash differs"
                )
            )
    return problems


def _check_remote(spark: SparkSession, pin: InputPin, file: FilePin) -> list[PinProblem]:
    """A file at a URI, pinned by size and modification time (its content is not
    hashed)."""
    found = _remote_status(spark, file.location)
    if found is None:
        return [PinProblem(pin, "missing", f"pinned file {file.path} was deleted")]
    size, mtime_ms = found
    if size != file.size or (file.mtime_ns is not None and mtime_ms * 1_000_000 != file.mtime_ns):
        return [
            PinProblem(
                pin, "changed", f"pinned file {file.path} changed (its size or modification time)"
            )
        ]
    return []


def _check_delta(spark: SparkSession, pin: InputPin) -> list[PinProblem]:
    from delta.tables import DeltaTable  # noqa: PLC0415 - needs the JVM

    version = pin.delta_version
    assert version is not None
    try:
        history = DeltaTable.forPath(spark, pin.location).history()
        committed = {
            int(r["version"]): int(r["us"])
            for r in history.select("version", F.unix_micros("timestamp").alias("us")).collect()
        }
        versions = set(committed)
    except Exception as exc:  # the table itself is gone or unreadable
        return [PinProblem(pin, "missing", f"the Delta table cannot be read: {_first_line(exc)}")]
    if version not in versions:
        return [
            PinProblem(
                pin,
                "missing",
                f"Delta version {version} is no longer in the table's log (versions "
                f"{min(versions)}..{max(versions)} are; the log keeps delta.logRetentionDuration)",
            )
        ]
    recreated: list[PinProblem] = []
    if pin.delta_committed_at is not None and committed[version] != utc_micros(
        pin.delta_committed_at
    ):
        recreated.append(
            PinProblem(
                pin,
                "changed",
                f"Delta version {version} was committed at "
                f"{from_micros(committed[version]).isoformat()}, not at "
                f"{pin.delta_committed_at.isoformat()} as pinned: the table was written anew",
            )
        )
    try:
        frame = spark.read.format("delta").option("versionAsOf", version).load(pin.location)
        files = [_local(f) for f in frame.inputFiles()]
    except Exception as exc:
        return [
            PinProblem(
                pin, "missing", f"Delta version {version} cannot be read: {_first_line(exc)}"
            )
        ]
    gone = [f for f in files if "://" not in f and not os.path.exists(f)]
    if gone:
        return [
            PinProblem(
                pin,
                "missing",
                f"Delta version {version} was vacuumed: {len(gone)} of its {len(files)} data "
                f"files are gone (e.g. {Path(gone[0]).name})",
            )
        ]
    return recreated


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def pinned_files(pins: Sequence[InputPin]) -> int:
    return sum(len(p.files or ()) for p in pins)
