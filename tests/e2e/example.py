"""The example feature_repo for end-to-end tests: a copy with generated data, and the
real CLI run in a subprocess, as a user runs it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKEWLESS = [sys.executable, "-m", "skewless.cli.main"]


def example_repo(base: Path, module: str) -> Path:
    """A copy of feature_repo/ under `base` (edits never touch the real one), spark-conf/
    beside it where feature_store.yaml expects it, and its data generated."""
    target = base / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo", target, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    shutil.copytree(ROOT / "spark-conf", base / "spark-conf")
    spec = importlib.util.spec_from_file_location(module, target / "demo" / "generate_data.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generator
    spec.loader.exec_module(generator)
    generator.generate(target)
    return target


def cli(repo: Path, *args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SKEWLESS, *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
