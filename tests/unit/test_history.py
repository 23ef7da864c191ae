"""A view's history (definition and data versions), rolling a view back through plan and
apply, and lineage from sources to services and saved training sets. No Spark: runs are
recorded as a materialization records them."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from skewless import Entity, FeatureStore
from skewless.cli.main import app
from skewless.errors import (
    DefinitionVersionNotFoundError,
    FeatureViewNotFoundError,
    LineageNotFoundError,
    RegistryConflictError,
    RollbackError,
)
from skewless.fingerprint import entity_fingerprint
from skewless.offline.lineage import Lineage, lineage
from skewless.offline.manifest import (
    CodeState,
    DefinitionPin,
    Environment,
    FilePin,
    InputPin,
    Manifest,
    RowsDigest,
)
from skewless.plan import AddObject, UpdateObject, apply_plan, plan_rollback, repo_drift
from skewless.registry import (
    ErasureRecord,
    MaterializationRecord,
    ObjectKind,
    ObjectRecord,
    ObjectWrite,
    SqliteRegistry,
    TrainingSetRecord,
)
from skewless.registry.history import FieldChange, spec_changes, view_history
from tests.unit.repo_fixtures import write_repo

# --- the readable diff ---------------------------------------------------------------

VIEW: dict[str, Any] = {
    "kind": "feature_view",
    "name": "stats",
    "entities": [{"name": "driver", "join_keys": ["driver_id"], "description": "a driver"}],
    "schema_": [
        {"name": "driver_id", "dtype": "int64", "description": ""},
        {"name": "rating", "dtype": "float64", "description": ""},
        {"name": "trips", "dtype": "int64", "description": ""},
    ],
    "source": {"type": "file", "path": "data/stats.parquet", "timestamp_field": "ts"},
    "ttl": "PT2H",
    "description": "hourly stats",
    "tags": {},
}


def _edited(**changes: Any) -> dict[str, Any]:
    return {**VIEW, **changes}


def _shown(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [str(c) for c in spec_changes(old, new)]


def test_history_diff_of_equal_specs_is_empty() -> None:
    assert spec_changes(VIEW, dict(VIEW)) == ()


def test_history_diff_shows_changed_values_old_to_new() -> None:
    new = _edited(ttl="P1DT3H", description="edited", source={**VIEW["source"], "path": "x/"})
    assert _shown(VIEW, new) == [
        'source.path: "data/stats.parquet" -> "x/"',
        "ttl: 2h -> 1d 3h",
        'description: "hourly stats" -> "edited"',
    ]
    assert spec_changes(VIEW, new)[1] == FieldChange("ttl", "PT2H", "P1DT3H")


def test_history_diff_names_schema_fields_added_removed_and_changed() -> None:
    rating, trips = VIEW["schema_"][1], VIEW["schema_"][2]
    new = _edited(
        schema_=[
            VIEW["schema_"][0],
            {**rating, "dtype": "float32", "description": "stars"},
            {"name": "speed", "dtype": "float64", "description": ""},
        ]
    )
    changes = spec_changes(VIEW, new)
    assert [str(c) for c in changes] == [
        'schema[rating].dtype: "float64" -> "float32"',
        'schema[rating].description: "" -> "stars"',
        "schema[trips]: removed (was int64)",
        "schema[speed]: added (float64)",
    ]
    assert changes[2] == FieldChange("schema[trips]", old=trips, change="removed")


def test_history_diff_of_reordered_fields_and_new_keys() -> None:
    key, rating, trips = VIEW["schema_"]
    new = _edited(schema_=[key, trips, rating], ttl=None, owner="ml-team")
    assert _shown(VIEW, new) == [
        'schema order: ["driver_id", "rating", "trips"] -> ["driver_id", "trips", "rating"]',
        "ttl: 2h -> none",
        'owner: added ("ml-team")',
    ]
    without = {k: v for k, v in VIEW.items() if k != "tags"}
    assert _shown(VIEW, without) == ["tags: removed (was {})"]


def test_history_diff_of_a_service_compares_its_views_by_name() -> None:
    old = {"features": [{"view": "a", "features": ["x"]}, {"view": "b", "features": ["y"]}]}
    new = {"features": [{"view": "a", "features": ["x", "z"]}]}
    assert _shown(old, new) == [
        'features[a].features: ["x"] -> ["x", "z"]',
        'features[b]: removed (was {"features": ["y"], "view": "b"})',
    ]


def test_history_diff_clips_long_values() -> None:
    (change,) = spec_changes(VIEW, _edited(description="d" * 500))
    assert str(change).endswith('-> "' + "d" * 56 + "...")


# --- history of a view ---------------------------------------------------------------


def _store(tmp_path: Path, **repo: Any) -> FeatureStore:
    store = FeatureStore(write_repo(tmp_path, **repo))
    store.apply()
    return store


def _edit_and_apply(store: FeatureStore, **repo: Any) -> None:
    write_repo(store.repo_path, **repo)
    store.apply()


def _run(store: FeatureStore, version: int, **changes: Any) -> MaterializationRecord:
    """Record a run of the current 'stats' definition, as a materialization would."""
    current = store.registry.get("feature_view", "stats")
    assert current is not None
    record = MaterializationRecord(
        view="stats",
        data_hash=current.data_hash,
        kind="full",
        start_us=None,
        end_us=1_767_225_600_000_000,  # 2026-01-01
        arrival_watermark_us=None,
        delta_path=f"{store.repo_path}/data/offline/unit/stats/{current.data_hash}",
        delta_version=version,
        rows_read=10,
        rows_written_offline=7,
        keys_offered_online=3,
        keys_written_online=3,
        seconds=1.0,
        finished_at=datetime.now(UTC),
        rows_inserted_offline=5,
        rows_updated_offline=2,
    )
    record = replace(record, **changes)
    store.registry.record_materialization(record)
    return record


def test_history_lists_definition_versions_with_their_changes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    _edit_and_apply(store, ttl_hours=5, description="edited")
    found = view_history(store.registry, "stats")
    records = store.registry.history("feature_view", "stats")
    assert [(d.version, d.data_version, d.registry_version) for d in found.definitions] == [
        (1, 1, 1),
        (2, 2, 2),
        (3, 2, 3),
    ]
    assert [d.event for d in found.definitions] == ["added", "changed", "changed"]
    assert [d.data_changed for d in found.definitions] == [False, True, False]
    assert [[str(c) for c in d.changes] for d in found.definitions] == [
        [],
        ["ttl: 2h -> 5h"],
        ['description: "hourly stats" -> "edited"'],
    ]
    assert [(d.data_hash, d.metadata_hash, d.applied_at) for d in found.definitions] == [
        (r.data_hash, r.metadata_hash, r.applied_at) for r in records
    ]
    assert found.current == found.definitions[-1]
    assert found.runs == ()


def test_history_ties_each_run_to_the_definition_it_ran_for(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = _run(store, 0, start_us=1_700_000_000_000_000, kind="full")
    _run(store, 1, kind="incremental", rows_inserted_offline=None, rows_updated_offline=None)
    _edit_and_apply(store, ttl_hours=5)
    _run(store, 0)
    _edit_and_apply(store, ttl_hours=5, description="edited")  # metadata only
    _run(store, 1, kind="incremental")
    found = view_history(store.registry, "stats")
    assert [(r.run, r.kind, r.definition_version, r.delta_version) for r in found.runs] == [
        (1, "full", 1, 0),
        (2, "incremental", 1, 1),
        (3, "full", 2, 0),
        (4, "incremental", 3, 1),  # same data hash as v2: the newest version before it
    ]
    one = found.runs[0]
    assert one.start == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert one.end == datetime(2026, 1, 1, tzinfo=UTC)
    assert (one.rows_read, one.rows_inserted, one.rows_updated, one.rows_written) == (10, 5, 2, 7)
    assert (one.delta_path, one.finished_at) == (first.delta_path, first.finished_at)
    assert (found.runs[1].rows_inserted, found.runs[1].rows_written) == (None, 7)
    tables = found.tables
    assert [(t.data_hash, t.last_delta_version, t.runs) for t in tables] == [
        (found.definitions[0].data_hash, 1, 2),
        (found.definitions[1].data_hash, 1, 2),
    ]
    assert [t.definition_versions for t in tables] == [(1,), (2, 3)]


def test_history_of_a_removed_and_readded_view(tmp_path: Path) -> None:
    store = _store(tmp_path)
    defs = store.repo_path / "defs.py"
    text = defs.read_text()
    defs.write_text(text.split("stats = FeatureView")[0])
    store.apply()
    defs.write_text(text)
    store.apply()
    found = view_history(store.registry, "stats")
    assert [(d.version, d.event, d.removed) for d in found.definitions] == [
        (1, "added", False),
        (2, "removed", True),
        (3, "re-added", False),
    ]
    assert found.definitions[2].changes == () and found.definitions[2].same_as == 1


def test_history_of_an_unknown_view_names_the_closest(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(FeatureViewNotFoundError, match=r"unknown feature view 'stat'\. Did you"):
        view_history(store.registry, "stat")


# --- rollback ------------------------------------------------------------------------


def test_rollback_plans_the_view_and_its_service_from_the_registry(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    write_repo(store.repo_path, ttl_hours=9, entity_description="edited, never applied")
    rb = plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    stages = [(type(s).__name__, s.kind, s.name) for s in rb.plan.stages]
    # only the view and the service that follows it: the repo's unapplied edits are not
    # part of a rollback
    assert stages == [
        ("UpdateObject", "feature_view", "stats"),
        ("UpdateObject", "feature_service", "svc"),
    ]
    view_stage = rb.plan.stages[0]
    assert isinstance(view_stage, UpdateObject)
    target = store.registry.history("feature_view", "stats")[0]
    assert view_stage.spec == target.spec
    assert (rb.fingerprint.data_hash, rb.fingerprint.metadata_hash) == (
        target.data_hash,
        target.metadata_hash,
    )
    assert view_stage.changed_fields == ("ttl",)
    assert rb.services == ("svc",)
    assert rb.rematerialization.needed and rb.rematerialization.table is None
    apply_plan(rb.plan, store.registry)
    now = store.registry.get("feature_view", "stats")
    assert now is not None and (now.version, now.data_version) == (3, 3)
    assert (now.data_hash, now.spec) == (target.data_hash, target.spec)
    entity = store.registry.get("entity", "driver")
    assert entity is not None and entity.version == 1
    assert store.get_feature_view("stats").ttl == timedelta(hours=2)


def test_rollback_names_the_delta_table_of_earlier_runs(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _run(store, 3)
    last = _run(store, 4, kind="incremental")
    _edit_and_apply(store, ttl_hours=5)
    _run(store, 0)
    rb = plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    assert rb.rematerialization.needed and rb.rematerialization.table == last


def test_rollback_of_metadata_only_needs_no_materialization(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, description="edited")
    rb = plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    assert [s.kind for s in rb.plan.stages] == ["feature_view"]  # the service's data is equal
    assert not rb.rematerialization.needed and rb.plan.views_to_materialize == []


def test_rollback_of_a_removed_view_adds_it_again(tmp_path: Path) -> None:
    store = _store(tmp_path)
    defs = store.repo_path / "defs.py"
    defs.write_text(defs.read_text().split("stats = FeatureView")[0])
    store.apply()
    rb = plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    assert rb.current is None
    assert [(type(s), s.name) for s in rb.plan.stages] == [(AddObject, "stats")]


@pytest.mark.parametrize(
    ("version", "error", "message"),
    [
        (2, RollbackError, "cannot roll feature view 'stats' back to v2: v2 is already its "),
        (7, DefinitionVersionNotFoundError, "feature view 'stats' has no version 7 (its "),
        (0, DefinitionVersionNotFoundError, "feature view 'stats' has no version 0"),
    ],
)
def test_rollback_refuses_the_current_or_an_unknown_version(
    tmp_path: Path, version: int, error: type[Exception], message: str
) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    with pytest.raises(error, match=re.escape(message)):
        plan_rollback(store.registry, store.project, store.repo_path, "stats", version)


def test_rollback_refuses_a_version_equal_to_the_current_one(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    _edit_and_apply(store)  # back as v1 was, by an edit
    with pytest.raises(RollbackError, match="current version v3 is the same definition"):
        plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)


def test_rollback_refuses_an_unknown_view(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(FeatureViewNotFoundError, match="Did you mean 'stats'"):
        plan_rollback(store.registry, store.project, store.repo_path, "stast", 1)


def test_rollback_refuses_a_version_whose_source_is_gone(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (store.repo_path / "data" / "stats.parquet").rename(store.repo_path / "data" / "new.parquet")
    defs = store.repo_path / "defs.py"
    defs.write_text(defs.read_text().replace("data/stats.parquet", "data/new.parquet"))
    store.apply()
    with pytest.raises(RollbackError) as info:
        plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    assert str(info.value) == (
        "cannot roll feature view 'stats' back to v1: its source no longer fits that "
        "version: source path data/stats.parquet does not exist"
    )


def test_rollback_refuses_a_version_whose_entity_changed_keys(tmp_path: Path) -> None:
    store = _store(tmp_path)
    defs = store.repo_path / "defs.py"
    defs.write_text(
        defs.read_text()
        .replace('join_keys=["driver_id"]', 'join_keys=["trips"]')
        .replace('Field("driver_id", Int64), ', "")
        .replace('Field("trips", Int64)', 'Field("trips", Int64), Field("driver_id", Int64)')
    )
    store.apply()
    with pytest.raises(RollbackError) as info:
        plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    assert str(info.value) == (
        "cannot roll feature view 'stats' back to v1: its entity 'driver' had join keys "
        "['driver_id'], and now has ['trips']"
    )


def test_rollback_refuses_a_version_lacking_a_feature_a_service_uses(tmp_path: Path) -> None:
    store = _store(tmp_path)
    defs = store.repo_path / "defs.py"
    original = defs.read_text()
    defs.write_text(
        original.replace('Field("trips", Int64)]', 'Field("trips", Int64), Field("x", Int64)]')
    )
    (store.repo_path / "data" / "stats.parquet").unlink()  # rewritten with column x
    _x_data(store.repo_path)
    store.apply()
    defs.write_text(
        defs.read_text().replace('features=[stats[["rating"]]]', 'features=[stats[["x"]]]')
    )
    store.apply()
    with pytest.raises(RollbackError, match="feature view 'stats' has no feature 'x'"):
        plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)


def _x_data(root: Path) -> None:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = pa.table(
        {
            "driver_id": pa.array([1], pa.int64()),
            "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "rating": pa.array([4.5], pa.float64()),
            "trips": pa.array([3], pa.int64()),
            "x": pa.array([7], pa.int64()),
        }
    )
    pq.write_table(table, root / "data" / "stats.parquet")


class _AppliedMeanwhile(SqliteRegistry):
    """The registry, and another process that applies while a rollback reads it."""

    def history(self, kind: ObjectKind, name: str) -> list[ObjectRecord]:
        found = super().history(kind, name)
        rider = Entity("rider", join_keys=["rider_id"])
        fp = entity_fingerprint(rider)
        write = ObjectWrite(
            "entity", "rider", fp.data_hash, fp.metadata_hash, rider.model_dump(mode="json"), True
        )
        other = SqliteRegistry(self.path, self.project)
        other.commit(other.registry_version(), [write], "1 added")
        return found


def test_rollback_made_while_another_apply_lands_is_a_conflict(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    registry = _AppliedMeanwhile(store.registry.path, store.project)  # type: ignore[attr-defined]
    with pytest.raises(RegistryConflictError) as info:
        plan_rollback(registry, store.project, store.repo_path, "stats", 1)
    assert (info.value.expected, info.value.found) == (2, 3)
    assert info.value.retryable
    rb = plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    assert "rider" in [r.name for r in store.registry.current("entity")]
    assert [s.name for s in rb.plan.stages] == ["stats", "svc"]  # the rider stays


def test_rollback_repo_drift(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    rb = plan_rollback(store.registry, store.project, store.repo_path, "stats", 1)
    drift = repo_drift(rb, store.repo_path)
    assert drift is not None
    assert drift.detail == (
        "the feature repo's files still define 'stats' differently from v1: the next "
        "`skewless apply` would undo this rollback unless its definition there is edited "
        "to match v1"
    )
    write_repo(store.repo_path, ttl_hours=2)  # the file edited to match v1
    assert repo_drift(rb, store.repo_path) is None
    defs = store.repo_path / "defs.py"
    defs.write_text("")
    drift = repo_drift(rb, store.repo_path)
    assert drift is not None and "would remove it" in drift.detail


# --- lineage -------------------------------------------------------------------------

CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _manifest(service: str | None = "svc") -> Manifest:
    return Manifest(
        project="unit",
        created_at=CREATED,
        registry_version=4,
        features=("stats:rating", "zones:surge"),
        feature_service=service,
        timestamp_column="event_timestamp",
        definitions=(
            DefinitionPin(
                kind="feature_view",
                name="stats",
                version=2,
                data_version=2,
                data_hash="aaaa1111bbbb2222",
                metadata_hash="m1",
                registry_version=2,
            ),
            DefinitionPin(
                kind="feature_view",
                name="zones",
                version=1,
                data_version=1,
                data_hash="cccc3333dddd4444",
                metadata_hash="m2",
                registry_version=1,
            ),
            DefinitionPin(
                kind="feature_service",
                name="svc",
                version=3,
                data_version=3,
                data_hash="eeee5555ffff6666",
                metadata_hash="m3",
                registry_version=4,
            ),
        ),
        inputs=(
            InputPin(
                view="stats",
                format="parquet",
                path="data/stats",
                location="/repo/data/stats",
                files=tuple(
                    FilePin(
                        path=f"data/stats/part-{i}.parquet",
                        location=f"/repo/data/stats/part-{i}.parquet",
                        size=100,
                        mtime_ns=1,
                        sha256="0" * 64,
                    )
                    for i in range(3)
                ),
            ),
            InputPin(
                view="zones",
                format="delta",
                path="data/zones",
                location="/repo/data/zones",
                delta_version=7,
            ),
        ),
        entity=RowsDigest(columns=(("driver_id", "bigint"),), rows=120, digest="e"),
        result=RowsDigest(columns=(("driver_id", "bigint"),), rows=120, digest="r"),
        code=CodeState(git_commit="abc", git_dirty=False),
        environment=Environment(python="3.11.9", skewless="0.1.0"),
    )


def _saved(store: FeatureStore, name: str, manifest: Manifest) -> TrainingSetRecord:
    record = TrainingSetRecord(
        name=name,
        location=f"/lake/unit/training_sets/{name}",
        delta_version=0,
        manifest=manifest.model_dump(mode="json"),
        created_at=CREATED,
    )
    store.registry.record_training_set(record)
    return record


def _edges(graph: Lineage) -> list[tuple[str, str]]:
    return [(e.upstream, e.downstream) for e in graph.edges]


def test_lineage_of_a_training_set_follows_its_manifest(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _saved(store, "march", _manifest())
    store.registry.record_erasure(
        "march", ErasureRecord("stats", keys=1, rows_removed=2, delta_version=1, erased_at=CREATED)
    )
    graph = lineage(store.registry, "march")
    assert graph.pinned and graph.root == "training_set:march"
    assert _edges(graph) == [
        ("feature_service:svc", "training_set:march"),
        ("feature_view:stats", "feature_service:svc"),
        ("source:/repo/data/stats@3 files", "feature_view:stats"),
        ("feature_view:zones", "feature_service:svc"),
        ("source:/repo/data/zones@v7", "feature_view:zones"),
    ]
    root = graph.node(graph.root)
    assert (root.location, root.delta_version, root.rows, root.registry_version) == (
        "/lake/unit/training_sets/march",
        0,
        120,
        4,
    )
    assert root.erasures == 1
    svc = graph.node("feature_service:svc")
    assert (svc.version, svc.data_hash) == (3, "eeee5555ffff6666")
    stats = graph.node("feature_view:stats")
    assert (stats.version, stats.data_hash, stats.features) == (2, "aaaa1111bbbb2222", ("rating",))
    files, delta = graph.upstream("feature_view:stats")[0], graph.upstream("feature_view:zones")[0]
    assert (files.name, files.files, files.delta_version, files.format) == (
        "data/stats",
        3,
        None,
        "parquet",
    )
    assert (delta.name, delta.files, delta.delta_version) == ("data/zones", None, 7)


def test_lineage_of_a_training_set_without_a_service(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _saved(store, "adhoc", _manifest(service=None))
    graph = lineage(store.registry, "adhoc")
    assert [n.name for n in graph.upstream("training_set:adhoc")] == ["stats", "zones"]


def test_lineage_of_a_service_uses_current_versions_and_feature_tables(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _edit_and_apply(store, ttl_hours=5)
    _run(store, 0)
    last = _run(store, 3, kind="incremental")
    graph = lineage(store.registry, "svc")
    assert not graph.pinned
    view = store.registry.get("feature_view", "stats")
    assert view is not None
    table = f"feature_table:{last.delta_path}"
    assert _edges(graph) == [
        ("source:data/stats.parquet", "feature_view:stats"),
        ("feature_view:stats", table),
        ("feature_view:stats", "feature_service:svc"),
    ]
    assert graph.node("feature_service:svc").version == 2
    stats = graph.node("feature_view:stats")
    assert (stats.version, stats.data_hash, stats.features) == (2, view.data_hash, ("rating",))
    assert (graph.node(table).delta_version, graph.node(table).when) == (3, last.finished_at)
    assert graph.node("source:data/stats.parquet").format == "parquet"


def test_lineage_of_a_view_not_materialized_since_its_change(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _run(store, 0)
    _edit_and_apply(store, ttl_hours=5)  # a new data hash: no table yet
    graph = lineage(store.registry, "stats")
    assert graph.root == "feature_view:stats"
    assert [n.kind for n in graph.nodes] == ["feature_view", "source"]
    assert graph.node("feature_view:stats").features == ("rating", "trips")


def test_lineage_of_an_unknown_name_lists_what_exists(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _saved(store, "march", _manifest())
    with pytest.raises(LineageNotFoundError) as info:
        lineage(store.registry, "sv")
    assert str(info.value) == (
        "unknown training set, feature service or feature view 'sv'. Did you mean 'svc'? "
        "Known training sets: march; feature services: svc; feature views: stats."
    )


# --- the commands --------------------------------------------------------------------


def _cli(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=stdin, env={"COLUMNS": "100"})


def test_cli_history_shows_both_tables_within_100_columns(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _run(store, 0, rows_inserted_offline=None, rows_updated_offline=None)
    _edit_and_apply(store, ttl_hours=5)
    _run(store, 0, rows_read=1_234_567, rows_inserted_offline=1_000_000)
    result = _cli("history", "stats", "--repo", str(store.repo_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = f"    {store.repo_path}/data/offline/unit/stats/"  # a path is never broken
    assert max(len(line.rstrip()) for line in lines if not line.startswith(table)) <= 100
    text = "\n".join(lines)
    assert "Definition versions of 'stats'" in text
    assert "ttl: 2h -> 5h" in text
    assert "Data versions of 'stats' (materialization runs)" in text
    assert "1,234,567" in text and "1,000,000" in text
    assert "7*" in text  # a run whose record does not split inserted and updated
    assert "Feature tables (one per data hash):" in text


def test_cli_history_of_an_unknown_view_is_one_error_line(tmp_path: Path) -> None:
    store = _store(tmp_path)
    result = _cli("history", "nope", "--repo", str(store.repo_path))
    assert result.exit_code == 1
    assert "Error: unknown feature view 'nope'." in result.output


def test_cli_rollback_asks_then_applies_and_warns_about_the_repo(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _run(store, 2)
    _edit_and_apply(store, ttl_hours=5)
    repo = str(store.repo_path)
    declined = _cli("rollback", "stats", "--to", "1", "--repo", repo, stdin="n\n")
    assert declined.exit_code == 1
    assert "~ change feature view 'stats' (v2 -> v3, data change: ttl)" in declined.output
    assert "nothing was applied" in declined.output
    assert store.registry.registry_version() == 2
    done = _cli("rollback", "stats", "--to", "1", "--repo", repo, stdin="y\n")
    assert done.exit_code == 0, done.output
    assert "has the definition of v1 again, recorded as v3; registry is now at v3" in done.output
    assert "Its Delta table exists from earlier runs" in done.output
    assert "skewless materialize-incremental --views stats" in done.output
    assert "the feature repo's files still define 'stats' differently from v1" in " ".join(
        done.output.split()
    )
    again = _cli("rollback", "stats", "--to", "1", "--yes", "--repo", repo)
    assert again.exit_code == 1
    assert "current version v3 is the same definition" in again.output


def test_cli_lineage_prints_the_tree(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _saved(store, "march", _manifest())
    result = _cli("lineage", "march", "--repo", str(store.repo_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "training set 'march' · 120 rows · registry v4 · saved 2026-03-02 09:30 UTC",
        "Delta table /lake/unit/training_sets/march, version 0",
        "└── feature service 'svc' · v3 · data eeee5555",
        "    ├── feature view 'stats' · v2 · data aaaa1111 · features rating",
        "    │   └── source data/stats · 3 files · parquet",
        "    └── feature view 'zones' · v1 · data cccc3333 · features surge",
        "        └── source data/zones · Delta version 7 · delta",
        "(as pinned by its manifest)",
    ]
