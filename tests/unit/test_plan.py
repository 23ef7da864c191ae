from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skewless import FeatureStore, Int64
from skewless.errors import (
    DefinitionError,
    EntityRowsError,
    RegistryConflictError,
    RepoLoadError,
)
from skewless.feature_request import compile_requests
from skewless.plan import AddObject, RemoveObject, UpdateObject, explain
from skewless.serving.plan import LookupPlan
from tests.unit.repo_fixtures import write_repo


def test_plan_adds_everything_on_an_empty_registry(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    plan = store.plan()
    assert [(type(s).__name__, s.kind, s.name) for s in plan.stages] == [
        ("AddObject", "entity", "driver"),
        ("AddObject", "feature_view", "stats"),
        ("AddObject", "feature_service", "svc"),
    ]
    assert plan.views_to_materialize == ["stats"]


def test_apply_runs_the_plan_then_plan_is_empty(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    _, version = store.apply()
    assert version == 1
    assert not store.plan().has_changes
    assert store.registry.get("feature_view", "stats") is not None
    assert store.get_feature_view("stats").ttl is not None


def test_plan_description_edit_is_metadata_only(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    store.apply()
    write_repo(tmp_path, description="edited")
    plan = store.plan()
    assert len(plan.stages) == 1
    stage = plan.stages[0]
    assert isinstance(stage, UpdateObject) and stage.name == "stats"
    assert not stage.data_changed
    assert plan.views_to_materialize == []
    assert "metadata only: description" in explain(plan)[0][1]
    store.apply(plan)
    record = store.registry.get("feature_view", "stats")
    assert record is not None and (record.version, record.data_version) == (2, 1)


def test_plan_ttl_edit_is_a_data_change(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    store.apply()
    write_repo(tmp_path, ttl_hours=5)
    plan = store.plan()
    kinds = {s.name: s for s in plan.stages}
    view = kinds["stats"]
    assert isinstance(view, UpdateObject) and view.data_changed
    assert view.changed_fields == ("ttl",)
    assert plan.views_to_materialize == ["stats"]
    assert isinstance(kinds["svc"], UpdateObject)  # the service's parent changed
    lines = [text for _, text in explain(plan)]
    assert any("data change: ttl" in line for line in lines)
    assert any("Needs (re-)materialization: stats" in line for line in lines)


def test_plan_removes_objects_gone_from_the_repo(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    store.apply()
    defs = (
        (tmp_path / "defs.py")
        .read_text()
        .replace('svc = FeatureService("svc", features=[stats[["rating"]]])', "")
    )
    (tmp_path / "defs.py").write_text(defs)
    plan = store.plan()
    assert [(type(s), s.name) for s in plan.stages] == [(RemoveObject, "svc")]
    store.apply(plan)
    assert store.registry.get("feature_service", "svc") is None
    assert [r.removed for r in store.registry.history("feature_service", "svc")] == [False, True]


def test_apply_of_a_stale_plan_is_refused(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    stale = store.plan()
    store.apply()
    with pytest.raises(RegistryConflictError) as info:
        store.apply(stale)
    assert info.value.retryable
    assert (info.value.expected, info.value.found) == (0, 1)


def test_plan_checks_sources_and_names_the_column(tmp_path: Path) -> None:
    write_repo(tmp_path)
    defs = (
        (tmp_path / "defs.py")
        .read_text()
        .replace('Field("trips", Int64)', 'Field("trips", Int64), Field("speed", Float64)')
    )
    (tmp_path / "defs.py").write_text(defs)
    with pytest.raises(DefinitionError, match="feature 'speed' is missing from the source") as info:
        FeatureStore(tmp_path).plan()
    assert info.value.file == "defs.py"


def test_plan_checks_types_and_join_keys(tmp_path: Path) -> None:
    write_repo(tmp_path)
    defs = (tmp_path / "defs.py").read_text()
    (tmp_path / "defs.py").write_text(
        defs.replace('Field("rating", Float64)', 'Field("rating", Int64)')
    )
    with pytest.raises(
        DefinitionError, match="feature 'rating' is declared int64 but the source has float64"
    ):
        FeatureStore(tmp_path).plan()
    (tmp_path / "defs.py").write_text(
        defs.replace('join_keys=["driver_id"]', 'join_keys=["driver"]')
    )
    (tmp_path / "defs.py").write_text(
        (tmp_path / "defs.py").read_text().replace('Field("driver_id", Int64), ', "")
    )
    with pytest.raises(DefinitionError, match="join key 'driver' is missing from the source"):
        FeatureStore(tmp_path).plan()


def test_plan_names_nested_changes(tmp_path: Path) -> None:
    store = FeatureStore(write_repo(tmp_path))
    store.apply()
    defs = (tmp_path / "defs.py").read_text()
    (tmp_path / "defs.py").write_text(
        defs.replace('Field("rating", Float64)', 'Field("rating", Float64, description="stars")')
    )
    stage = store.plan().stages[0]
    assert isinstance(stage, UpdateObject)
    assert stage.changed_fields == ("schema[rating].description",)
    assert not stage.data_changed


def _unpinned_repo(root: Path, driver_ids: pa.Array) -> Path:
    """write_repo's repo, but the view's schema does not list its join key."""
    write_repo(root)
    defs = (root / "defs.py").read_text().replace('Field("driver_id", Int64), ', "")
    (root / "defs.py").write_text(defs)
    table = pq.read_table(root / "data/stats.parquet")
    table = table.set_column(0, "driver_id", driver_ids)
    pq.write_table(table, root / "data/stats.parquet")
    return root


def test_plan_records_the_source_type_of_an_undeclared_join_key(tmp_path: Path) -> None:
    store = FeatureStore(_unpinned_repo(tmp_path, pa.array([1], pa.int64())))
    assert "driver_id" not in (tmp_path / "defs.py").read_text().split("schema=")[1]
    first = store.plan()
    again = store.plan()
    stage = first.stages[1]
    assert isinstance(stage, AddObject) and stage.name == "stats"
    assert [(f["name"], f["dtype"]) for f in stage.spec["schema_"]] == [
        ("driver_id", "int64"),
        ("rating", "float64"),
        ("trips", "int64"),
    ]
    assert [s.fingerprint for s in again.stages] == [s.fingerprint for s in first.stages]
    store.apply(first)
    view = store.get_feature_view("stats")
    assert [(f.name, f.dtype) for f in view.key_fields] == [("driver_id", Int64)]
    assert view.feature_names == ("rating", "trips")
    assert not store.plan().has_changes


def test_plan_shows_a_changed_source_key_type_as_a_data_change(tmp_path: Path) -> None:
    store = FeatureStore(_unpinned_repo(tmp_path, pa.array([1], pa.int64())))
    store.apply()
    _unpinned_repo(tmp_path, pa.array(["1"], pa.string()))
    plan = store.plan()
    view = next(s for s in plan.stages if s.name == "stats")
    assert isinstance(view, UpdateObject) and view.data_changed
    assert view.changed_fields == ("schema[driver_id].dtype",)
    assert plan.views_to_materialize == ["stats"]


def test_plan_takes_csv_join_keys_as_strings_unless_declared(tmp_path: Path) -> None:
    _unpinned_repo(tmp_path, pa.array([1], pa.int64()))
    defs = (tmp_path / "defs.py").read_text()
    (tmp_path / "defs.py").write_text(
        defs.replace('"data/stats.parquet"', '"data/stats.csv", file_format="csv"')
    )
    (tmp_path / "data/stats.csv").write_text("driver_id,ts,rating,trips\n1,2024-01-01,4.5,3\n")
    stage = FeatureStore(tmp_path).plan().stages[1]
    assert isinstance(stage, AddObject)
    assert stage.spec["schema_"][0]["dtype"] == "string"


def test_online_lookup_refuses_a_key_of_another_type_than_the_source_gave(tmp_path: Path) -> None:
    store = FeatureStore(_unpinned_repo(tmp_path, pa.array([1], pa.int64())))
    store.apply()
    views = {v.name: v for v in store.list_feature_views()}
    lookup = LookupPlan("unit", compile_requests(["stats:rating"], views, full_feature_names=False))
    assert len(lookup.keys([{"driver_id": 1001}])) == 1
    with pytest.raises(EntityRowsError, match="join key 'driver_id'") as info:
        lookup.keys([{"driver_id": "1001"}])
    assert info.value.key == "driver_id"


def test_plan_names_source_paths_as_the_definition_writes_them(tmp_path: Path) -> None:
    write_repo(tmp_path)
    (tmp_path / "data/stats.parquet").unlink()
    with pytest.raises(DefinitionError) as info:
        FeatureStore(tmp_path).plan()
    assert info.value.field == "source.path"
    assert info.value.detail == "source path data/stats.parquet does not exist"
    assert str(tmp_path) not in str(info.value)


def test_plan_names_repo_files_relative_to_the_repo_whenever_they_fail(tmp_path: Path) -> None:
    write_repo(tmp_path, ttl_hours=0)  # refused when defs.py runs
    with pytest.raises(DefinitionError) as at_load:
        FeatureStore(tmp_path).plan()
    assert at_load.value.file == "defs.py"
    assert str(at_load.value).startswith("defs.py: feature view 'stats': field 'ttl': ")
    write_repo(tmp_path)
    (tmp_path / "more").mkdir()
    (tmp_path / "more/broken.py").write_text("x = 1 / 0\n")
    with pytest.raises(RepoLoadError) as broken:
        FeatureStore(tmp_path).plan()
    assert str(broken.value) == "more/broken.py: ZeroDivisionError (line 1): division by zero"
