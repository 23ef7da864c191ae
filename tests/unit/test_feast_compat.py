"""What a Feast user types works where the meaning is the same: the CLI's --version and
-c, `init NAME` naming the project, Feast's keyword names for materialization."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import skewless
import skewless.types
from skewless import Entity, FeatureView, Field, FileSource, Int64, __version__, feast_names
from skewless.cli.commands import project_name
from skewless.cli.main import app
from skewless.errors import DefinitionError, SkewlessError
from skewless.feature_store import FeatureStore, _either

runner = CliRunner()


def test_cli_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"skewless {__version__}"


def test_cli_init_names_the_project_after_the_folder_and_c_is_repo(tmp_path: Path) -> None:
    repo = tmp_path / "Rides Team-2"
    assert runner.invoke(app, ["init", str(repo)]).exit_code == 0
    assert (repo / "feature_store.yaml").read_text().startswith("project: rides_team_2\n")
    for flag in ("-c", "--chdir", "--repo", "-r"):
        listed = runner.invoke(app, ["list", flag, str(repo)])
        assert listed.exit_code == 0, listed.stdout
        assert "Nothing applied yet" in listed.stdout
    named = tmp_path / "other"
    assert runner.invoke(app, ["init", str(named), "--project", "mine"]).exit_code == 0
    assert (named / "feature_store.yaml").read_text().startswith("project: mine\n")


@pytest.mark.parametrize(
    ("folder", "project"),
    [("feature_repo", "feature_repo"), ("2024 Models", "p_2024_models"), ("é", "my_project")],
)
def test_project_name_is_an_identifier(folder: str, project: str) -> None:
    assert project_name(Path("/tmp") / folder) == project


def test_feast_keyword_names_are_aliases_never_both() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert _either("end", None, "end_date", t) == t
    assert _either("end", t, "end_date", None) == t
    assert _either("end", None, "end_date", None) is None
    with pytest.raises(TypeError, match="give end or end_date, not both"):
        _either("end", t, "end_date", t)


# --- Feast names skewless does not have: each says what to use instead ----------------


@pytest.mark.parametrize("name", ["PushSource", "on_demand_feature_view", "Project", "ValueType"])
def test_import_of_a_feast_only_name_says_what_to_use(name: str) -> None:
    with pytest.raises(ImportError, match=rf"^{name} is a Feast name .*porting-from-feast"):
        exec(f"from skewless import {name}", {})  # the import statement, as a user writes it


def test_import_of_a_feast_only_type_says_what_to_use() -> None:
    with pytest.raises(ImportError, match=r"skewless.types.Map is a Feast name.*JSON String"):
        exec("from skewless.types import Map", {})


def test_feast_names_are_plain_missing_attributes_outside_imports() -> None:
    assert not hasattr(skewless, "PushSource")  # hasattr and getattr's default work
    assert getattr(skewless.types, "Map", None) is None
    with pytest.raises(AttributeError, match="PushSource is a Feast name.*no push API"):
        _ = skewless.PushSource
    with pytest.raises(ImportError, match="skewless.types.Json is a Feast name"):
        exec("from skewless.types import Int64, Json", {})


def test_unknown_names_that_are_not_feasts_fail_as_usual() -> None:
    with pytest.raises(ImportError, match="cannot import name 'Pushsource'"):
        exec("from skewless import Pushsource", {})
    assert not hasattr(skewless, "no_such_name")
    assert not hasattr(skewless.types, "no_such_type")


def test_feast_tables_name_nothing_skewless_has() -> None:
    assert not set(feast_names.IMPORTS) & set(skewless.__all__)
    assert not [n for n in feast_names.TYPES if n in vars(skewless.types)]
    assert not [n for n in feast_names.STORE_METHODS if n in vars(FeatureStore)]
    commands = {c.name for c in app.registered_commands if not c.hidden}
    assert not set(feast_names.COMMANDS) & commands


def test_feast_store_methods_say_what_to_use(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert runner.invoke(app, ["init", str(repo)]).exit_code == 0
    store = FeatureStore(repo)
    with pytest.raises(AttributeError, match=r"FeatureStore.push is a Feast name.*no push API"):
        store.push("driver_stats_push_source", None)
    with pytest.raises(AttributeError, match=r"save_training_set"):
        store.create_saved_dataset(from_=None, name="x", storage=None)
    with pytest.raises(AttributeError, match=r"^'FeatureStore' object has no attribute 'pushh'$"):
        store.pushh()
    store.refresh_registry()  # Feast's call; nothing to refresh here


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Entity(name="driver", join_keys=["driver_id"], value_type=4), "value_type"),
        (lambda: Entity(name="driver", join_key="driver_id"), "join_keys=\\[...\\]"),
        # given instead of a required argument: the Feast name is what is reported
        (
            lambda: FeatureView(
                name="stats",
                entities=[Entity(name="driver", join_keys=["driver_id"])],
                schema=[Field(name="trips", dtype=Int64)],
                batch_source=FileSource(path="d.parquet", timestamp_field="ts"),
            ),
            "field 'batch_source'.*`source=`",
        ),
        (
            lambda: FileSource(path="d.parquet", event_timestamp_column="ts"),
            "source 'd.parquet': field 'event_timestamp_column'.*`timestamp_field=`",
        ),
        (lambda: Field(name="x", dtype=Int64, tags={"a": "b"}), "tags belong to the feature"),
        (
            lambda: FileSource(path="d.parquet", timestamp_field="ts", field_mapping={"a": "b"}),
            "rename the columns",
        ),
    ],
)
def test_feast_arguments_of_definitions_say_what_to_use(build: Any, match: str) -> None:
    with pytest.raises(
        DefinitionError, match=f"(?=.*a Feast argument that skewless does not take)(?=.*{match})"
    ):
        build()


def test_feast_file_format_object_says_to_give_a_string() -> None:
    class ParquetFormat:  # what Feast's FileSource takes
        pass

    with pytest.raises(DefinitionError, match='file_format="parquet" or "csv", a string'):
        FileSource(path="d.parquet", timestamp_field="ts", file_format=ParquetFormat())
    with pytest.raises(DefinitionError, match="Input should be 'parquet' or 'csv'"):
        FileSource(path="d.parquet", timestamp_field="ts", file_format="orc")


def test_unknown_argument_of_a_definition_is_named() -> None:
    with pytest.raises(DefinitionError, match="field 'colour': unknown argument 'colour'"):
        Field(name="x", dtype=Int64, colour="red")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["feature-views", "list"], "skewless list"),
        (["ui", "--port", "8888"], "no web UI"),
        (["version"], "skewless --version"),
        (["serve_offline"], "no offline server"),
    ],
)
def test_feast_cli_commands_say_what_to_run(argv: list[str], match: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert f"`{argv[0]}` is a Feast command" in result.stderr
    assert match in " ".join(result.stderr.split())


def test_feature_store_takes_feasts_fs_yaml_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert runner.invoke(app, ["init", str(repo)]).exit_code == 0
    staging = (repo / "feature_store.yaml").read_text().replace("project: repo", "project: staging")
    (repo / "staging.yaml").write_text(staging)
    assert FeatureStore(repo, fs_yaml_file="staging.yaml").project == "staging"
    assert FeatureStore(repo).project == "repo"
    with pytest.raises(SkewlessError, match=r"missing.yaml: not found"):
        FeatureStore(repo, fs_yaml_file="missing.yaml")
