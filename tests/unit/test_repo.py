from __future__ import annotations

import os
import sys
import textwrap
import types
from datetime import timedelta
from pathlib import Path

import pytest

from skewless.errors import DefinitionError, RepoLoadError
from skewless.repo import load_repo, repo_files
from tests.unit.repo_fixtures import write_repo


def test_repo_loads_definitions(tmp_path: Path) -> None:
    contents = load_repo(write_repo(tmp_path))
    assert set(contents.entities) == {"driver"}
    assert set(contents.feature_views) == {"stats"}
    assert set(contents.feature_services) == {"svc"}
    assert contents.file_of("feature_view", "stats") == "defs.py"


def test_repo_skips_private_ignored_and_data_files(tmp_path: Path) -> None:
    write_repo(tmp_path)
    for rel in ("_private.py", "demo/run.py", "data/x.py", ".hidden/y.py", "scripts/z.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("raise SystemExit('must not be imported')\n")
    (tmp_path / ".skewlessignore").write_text("# comment\ndemo/\nscripts/*.py\n")
    assert [p.name for p in repo_files(tmp_path)] == ["defs.py"]
    load_repo(tmp_path)


def test_repo_reads_a_feastignore_too(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "explore.py").write_text("raise SystemExit('not imported')\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "z.py").write_text("raise SystemExit('not imported')\n")
    (tmp_path / ".feastignore").write_text("notebooks/\n")
    (tmp_path / ".skewlessignore").write_text("scripts/\n")
    assert [p.name for p in repo_files(tmp_path)] == ["defs.py"]


def test_repo_files_may_import_each_other(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "more.py").write_text(
        textwrap.dedent(
            """
            from defs import driver, stats
            from skewless import FeatureService
            svc2 = FeatureService("svc2", features=[stats])
            """
        )
    )
    contents = load_repo(tmp_path)
    assert set(contents.feature_services) == {"svc", "svc2"}


def test_repo_error_names_file_object_and_field(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "bad.py").write_text(
        "from skewless import *\n"
        "v = FeatureView('v', entities=[Entity('e')], schema=[Field('x', Int64)],\n"
        "    source=FileSource('d.parquet', timestamp_field='ts'), ttl=-1)\n"
    )
    with pytest.raises(DefinitionError) as info:
        load_repo(tmp_path)
    assert info.value.file is not None and info.value.file.endswith("bad.py")
    assert "feature view 'v'" in str(info.value)
    assert "field 'ttl'" in str(info.value)


def test_repo_two_objects_with_one_name_are_refused(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "dup.py").write_text(
        "from skewless import *\ndriver = Entity('driver', join_keys=['other_id'])\n"
    )
    with pytest.raises(DefinitionError, match="defined twice") as info:
        load_repo(tmp_path)
    assert "entity 'driver'" in str(info.value)


def test_repo_service_referencing_unknown_view(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "svc.py").write_text(
        "from skewless import *\n"
        "from skewless.definitions import ServiceFeatures\n"
        "s = FeatureService('s', features=[ServiceFeatures(view='nope', features=('x',))])\n"
    )
    with pytest.raises(DefinitionError, match="feature view 'nope'"):
        load_repo(tmp_path)


def test_repo_python_error_names_file_and_line(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "broken.py").write_text("x = 1\ny = undefined_name\n")
    with pytest.raises(RepoLoadError, match=r"broken.py: NameError \(line 2\)"):
        load_repo(tmp_path)


def test_repo_files_may_define_dataclasses(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "helpers.py").write_text(
        "from dataclasses import dataclass\n\n"
        "@dataclass\nclass Window:\n    hours: int\n\nW = Window(2)\n"
    )
    assert set(load_repo(tmp_path).feature_views) == {"stats"}


MORE = """
from defs import stats
from skewless import FeatureService
svc2 = FeatureService("svc2", features=[stats])
"""


def test_repo_load_reads_an_edit_that_keeps_size_and_second(tmp_path: Path) -> None:
    """Python trusts cached bytecode whose source has the same size and whole-second
    mtime; an edit of `ttl` from 2 to 3 hours saved within that second must still be
    seen, and no bytecode is written into the repo."""
    write_repo(tmp_path, ttl_hours=2)
    defs = tmp_path / "defs.py"
    (tmp_path / "more.py").write_text(MORE)  # the sibling import reads defs.py too
    stat = defs.stat()
    assert load_repo(tmp_path).feature_views["stats"].ttl == timedelta(hours=2)
    write_repo(tmp_path, ttl_hours=3)
    os.utime(defs, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert defs.stat().st_size == stat.st_size
    contents = load_repo(tmp_path)
    assert contents.feature_views["stats"].ttl == timedelta(hours=3)
    assert not list(tmp_path.rglob("__pycache__"))


def test_repo_sibling_import_sees_the_file_as_it_is_now(tmp_path: Path) -> None:
    """A second load in the same process (a notebook after an edit) imports the edited
    sibling, not the module the first load left behind."""
    write_repo(tmp_path, ttl_hours=2)
    (tmp_path / "more.py").write_text(MORE)
    assert load_repo(tmp_path).feature_views["stats"].ttl == timedelta(hours=2)
    write_repo(tmp_path, ttl_hours=12)
    contents = load_repo(tmp_path)
    assert contents.feature_views["stats"].ttl == timedelta(hours=12)
    assert set(contents.feature_services) == {"svc", "svc2"}


def test_repo_copies_in_two_folders_do_not_share_modules(tmp_path: Path) -> None:
    """Two copies of one repo (the same module names) loaded in one process, in either
    order, each give their own definitions."""
    first, second = tmp_path / "a", tmp_path / "b"
    for root, hours in ((first, 1), (second, 5)):
        root.mkdir()
        write_repo(root, ttl_hours=hours)
        (root / "more.py").write_text(MORE)
    for root, hours in ((first, 1), (second, 5), (first, 1)):
        assert load_repo(root).feature_views["stats"].ttl == timedelta(hours=hours), root


def test_repo_load_leaves_the_module_table_as_it_found_it(tmp_path: Path) -> None:
    """Nothing of the repo stays in sys.modules, and a module of the repo the caller had
    imported is put back as it was (the load itself used the file as it is now)."""
    write_repo(tmp_path, ttl_hours=2)
    (tmp_path / "more.py").write_text(MORE)
    sys.path.insert(0, str(tmp_path))
    try:
        import defs  # type: ignore[import-not-found]  # noqa: PLC0415
    finally:
        sys.path.remove(str(tmp_path))
        del sys.modules["defs"]
    callers = types.ModuleType("defs")
    callers.__file__ = defs.__file__
    sys.modules["defs"] = callers
    try:
        write_repo(tmp_path, ttl_hours=4)
        assert load_repo(tmp_path).feature_views["stats"].ttl == timedelta(hours=4)
        assert sys.modules["defs"] is callers
        left = [
            n for n, m in sys.modules.items() if str(tmp_path) in str(getattr(m, "__file__", ""))
        ]
        assert left == ["defs"]
    finally:
        del sys.modules["defs"]
