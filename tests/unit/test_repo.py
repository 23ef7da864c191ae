from __future__ import annotations

import textwrap
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
