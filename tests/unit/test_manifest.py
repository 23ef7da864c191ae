"""The manifest model, the code and environment it records, and the reproduce report's
text: pure logic and the git binary, no JVM."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from skewless.errors import ManifestError
from skewless.offline.environment import code_state, environment, lock_file
from skewless.offline.manifest import (
    CodeState,
    DefinitionPin,
    Environment,
    FilePin,
    InputPin,
    Manifest,
    RowsDigest,
)
from skewless.offline.reproduce import ReproduceReport


def manifest(**changes: object) -> Manifest:
    base = Manifest(
        project="rides",
        created_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        registry_version=4,
        features=("trips:rating",),
        timestamp_column="event_timestamp",
        definitions=(
            DefinitionPin(
                kind="feature_view",
                name="trips",
                version=2,
                data_version=1,
                data_hash="a" * 16,
                metadata_hash="b" * 16,
                registry_version=3,
            ),
        ),
        inputs=(
            InputPin(
                view="trips",
                format="parquet",
                path="data/trips",
                location="/repo/data/trips",
                files=(
                    FilePin(
                        path="data/trips/p0.parquet",
                        location="/repo/data/trips/p0.parquet",
                        size=10,
                        mtime_ns=5,
                        sha256="c" * 64,
                    ),
                ),
            ),
        ),
        entity=RowsDigest(columns=(("driver_id", "bigint"),), rows=3, digest="d" * 32),
        result=RowsDigest(
            columns=(("driver_id", "bigint"), ("rating", "double")), rows=3, digest="e" * 32
        ),
        code=CodeState(),
        environment=Environment(python="3.11.7", skewless="0.1.0"),
    )
    return base.model_copy(update=changes)


def test_manifest_json_round_trip_and_lookups() -> None:
    m = manifest()
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert again.views == ["trips"]
    assert again.entity_columns == ["driver_id"]
    assert again.input_of("trips") is not None and again.input_of("other") is None
    assert again.definition("feature_view", "trips") is not None
    assert again.inputs[0].shown == "data/trips (1 file)"


def test_manifest_from_json_names_the_file_at_fault() -> None:
    with pytest.raises(ManifestError, match=r"^old\.json is not a readable skewless manifest"):
        Manifest.from_json(b'{"project": "x"}', origin="old.json")
    with pytest.raises(ManifestError, match="not JSON|Invalid JSON"):
        Manifest.from_json(b"[not json", origin="x.json")
    newer = manifest().to_json().replace('"format": 1', '"format": 9, "lineage_id": "x"')
    with pytest.raises(ManifestError, match="manifest format 9"):
        Manifest.from_json(newer, origin="new.json")


def _git(path: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(path), "-c", "user.email=t@t", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


def test_code_state_reads_the_commit_and_uncommitted_files(tmp_path: Path) -> None:
    assert code_state(tmp_path) == CodeState()  # not a checkout
    repo = tmp_path / "feature_repo"
    repo.mkdir()
    (repo / "defs.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("data/\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert code_state(repo) == CodeState(git_commit=head, git_dirty=False)
    (repo / "data").mkdir()
    (repo / "data" / "rows.parquet").write_bytes(b"ignored")  # ignored: still clean
    assert code_state(repo).git_dirty is False
    (repo / "new_view.py").write_text("y = 2\n")  # untracked definitions count
    assert code_state(repo).git_dirty is True
    (repo / "new_view.py").unlink()
    (repo / "defs.py").write_text("x = 2\n")
    assert code_state(repo).git_dirty is True
    (tmp_path / "outside.txt").write_text("elsewhere in the checkout")
    (repo / "defs.py").write_text("x = 1\n")
    assert code_state(repo).git_dirty is False  # only the repo's folder counts


def test_environment_finds_the_lock_file_above_the_repo(tmp_path: Path) -> None:
    repo = tmp_path / "project" / "feature_repo"
    repo.mkdir(parents=True)
    assert lock_file(repo) is None
    (tmp_path / "project" / "uv.lock").write_text("version = 1\n")
    assert lock_file(repo) == tmp_path / "project" / "uv.lock"
    env = environment(repo, java="17.0.9")
    assert env.java == "17.0.9" and env.pyspark and env.python
    assert env.lock_sha256 is not None and len(env.lock_sha256) == 64


def test_reproduce_report_says_why() -> None:
    same = ReproduceReport("s", "identical", (), 3, "d1", rows_rebuilt=3, rebuilt_digest="d1")
    assert same.identical and same.lines()[0].startswith("s: identical (3 rows")
    changed = ReproduceReport(
        "s",
        "different",
        ("data/trips/p0.parquet (feature view 'trips'): pinned file changed",),
        3,
        "d1",
        rows_rebuilt=3,
        rebuilt_digest="d2",
        rows_only_saved=1,
        rows_only_rebuilt=1,
        columns_differing=("rating",),
    )
    text = "\n".join(changed.lines())
    assert not changed.identical
    assert "1 saved rows are not in the rebuild" in text
    assert "columns that differ: rating" in text
    assert "why: data/trips/p0.parquet" in text
