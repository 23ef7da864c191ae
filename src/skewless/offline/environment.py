"""The code and environment a training set is built in: the feature repo's git commit
and whether its files had uncommitted changes, library versions, and the hash of the
lock file that pins the rest. Read from the machine; nothing here changes it."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from skewless.offline.manifest import CodeState, Environment

LOCK_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock", "requirements.lock", "requirements.txt")


def _git(repo_path: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            ["git", "-C", str(repo_path), *args],  # noqa: S607 - git from PATH, as users run it
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def code_state(repo_path: Path) -> CodeState:
    """The commit checked out where the feature repo is, and whether the repo's folder
    holds changes not in it (modified, staged or untracked files; ignored ones such as
    data/ do not count). Both None outside a git checkout."""
    commit = _git(repo_path, "rev-parse", "HEAD")
    if commit is None:
        return CodeState()
    status = _git(repo_path, "status", "--porcelain", "--", ".")
    return CodeState(
        git_commit=commit.strip(), git_dirty=None if status is None else bool(status.strip())
    )


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def lock_file(repo_path: Path) -> Path | None:
    """The first lock file in the feature repo's folder or a folder above it, up to the
    git checkout's root (or three levels up outside a checkout)."""
    top = _git(repo_path, "rev-parse", "--show-toplevel")
    root = Path(top.strip()) if top else None
    folder = repo_path.resolve()
    for _ in range(16 if root else 4):
        for name in LOCK_FILES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if folder in (root, folder.parent):
            return None
        folder = folder.parent
    return None


def environment(repo_path: Path, java: str | None) -> Environment:
    lock = lock_file(repo_path)
    return Environment(
        python=platform.python_version(),
        skewless=_version("skewless") or "unknown",
        pyspark=_version("pyspark"),
        delta_spark=_version("delta-spark"),
        pandas=_version("pandas"),
        pyarrow=_version("pyarrow"),
        java=java,
        platform=platform.platform(),
        lock_sha256=None if lock is None else hashlib.sha256(lock.read_bytes()).hexdigest(),
    )
