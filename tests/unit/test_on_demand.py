"""On-demand feature views and request sources: definitions, repo checks, fingerprints,
compiled requests. No JVM, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from skewless import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
    Int64,
    OnDemandFeatureView,
    RequestSource,
    String,
    UnixTimestamp,
)
from skewless.definitions import ViewInput
from skewless.errors import (
    DefinitionError,
    EntityDataFrameError,
    FeatureNotFoundError,
    InvalidFeatureRefError,
)
from skewless.expr import col, hour, when
from skewless.feature_request import check_entity_columns, compile_requests, hidden_name
from skewless.fingerprint import fingerprint, on_demand_fingerprint
from skewless.registry.base import ObjectRecord
from skewless.repo import load_repo

driver = Entity("driver", join_keys=["driver_id"])
src = FileSource("stats.parquet", timestamp_field="ts")
stats = FeatureView(
    "stats",
    entities=[driver],
    schema=[Field("fare", Float64), Field("trips", Int64), Field("city", String)],
    source=src,
    ttl=timedelta(days=1),
)
trip = RequestSource("trip", schema=[Field("distance_km", Float64), Field("at", UnixTimestamp)])


def ratios(**changes: object) -> OnDemandFeatureView:
    spec: dict[str, object] = {
        "sources": [stats[["fare", "trips"]], trip],
        "schema": [
            Field("fare_per_km", Float64, expr=col("fare") / col("distance_km")),
            Field("busy", Int64, expr=when(col("trips") > 10, 1).otherwise(0)),
            Field("hour_paris", Int64, expr=hour(col("at"), tz="Europe/Paris")),
        ],
    }
    spec.update(changes)
    return OnDemandFeatureView("ratios", **spec)  # type: ignore[arg-type]


def test_on_demand_view_keeps_its_inputs_as_data() -> None:
    odfv = ratios()
    view_input = odfv.sources[0]
    assert isinstance(view_input, ViewInput)
    assert view_input.view == "stats"
    assert [(f.name, f.dtype) for f in view_input.features] == [("fare", Float64), ("trips", Int64)]
    assert odfv.input_types == {
        "fare": Float64,
        "trips": Int64,
        "distance_km": Float64,
        "at": UnixTimestamp,
    }
    assert odfv.feature_names == ("fare_per_km", "busy", "hour_paris")


def test_on_demand_view_round_trips_through_the_registry_form() -> None:
    odfv = ratios()
    spec = odfv.model_dump(mode="json")
    record = ObjectRecord(
        "on_demand_feature_view", "ratios", 1, 1, "d", "m", spec, 1, datetime.now(UTC)
    )
    assert record.definition() == odfv
    assert "col" in str(spec)  # an expression is stored as its canonical data


def test_on_demand_type_errors_name_the_view_field_and_subexpression() -> None:
    with pytest.raises(DefinitionError) as err:
        ratios(schema=[Field("bad", Float64, expr=col("city") / col("distance_km"))])
    # 'city' is not among the projected features
    assert err.value.object_name == "ratios"
    assert err.value.field == "schema.bad"
    assert "no input column 'city'" in str(err.value)
    with pytest.raises(DefinitionError) as err:
        ratios(schema=[Field("bad", Float32, expr=col("fare") * 2)])
    assert "gives float64 but the feature is declared float32" in str(err.value)
    assert "col('fare') * 2" in str(err.value)


def test_on_demand_features_are_all_computed() -> None:
    with pytest.raises(DefinitionError, match="every feature of an on-demand view is computed"):
        ratios(schema=[Field("plain", Float64)])


def test_on_demand_inputs_must_have_one_source_each() -> None:
    clash = RequestSource("clash", schema=[Field("fare", Float64)])
    with pytest.raises(DefinitionError, match="input 'fare' is given by feature view 'stats'"):
        ratios(sources=[stats, clash])


def test_request_source_fields_are_sent_not_computed() -> None:
    with pytest.raises(DefinitionError, match="is sent, not computed"):
        RequestSource("r", schema=[Field("x", Float64, expr=col("y") * 2)])
    with pytest.raises(DefinitionError, match="at least one field"):
        RequestSource("r", schema=[])


def test_fingerprint_of_on_demand_view_follows_expressions_and_inputs() -> None:
    views = {"stats": stats}
    base = on_demand_fingerprint(ratios(), views)
    same = on_demand_fingerprint(ratios(), views)
    assert base == same
    edited = ratios(
        schema=[Field("fare_per_km", Float64, expr=col("fare") / (col("distance_km") + 0))]
    )
    assert on_demand_fingerprint(edited, views).data_hash != base.data_hash
    described = ratios(description="fares")
    assert on_demand_fingerprint(described, views).data_hash == base.data_hash
    assert on_demand_fingerprint(described, views).metadata_hash != base.metadata_hash
    # the data of the views it reads is folded in
    longer = stats.model_copy(update={"ttl": timedelta(days=2)})
    assert on_demand_fingerprint(ratios(), {"stats": longer}).data_hash != base.data_hash


def test_fingerprint_of_service_folds_on_demand_views() -> None:
    odfv = ratios()
    service = FeatureService("svc", features=[stats[["fare"]], odfv[["busy"]]])
    views = {"stats": stats, "ratios": odfv}
    base = fingerprint(service, views)
    edited = ratios(
        schema=[
            Field("fare_per_km", Float64, expr=col("fare") / col("distance_km")),
            Field("busy", Int64, expr=when(col("trips") > 20, 1).otherwise(0)),
            Field("hour_paris", Int64, expr=hour(col("at"), tz="Europe/Paris")),
        ]
    )
    assert fingerprint(service, {**views, "ratios": edited}).data_hash != base.data_hash
    assert service.refs == ["stats:fare", "ratios:busy"]


def test_compile_adds_hidden_inputs_and_request_fields() -> None:
    odfv = ratios()
    req = compile_requests(
        ["ratios:fare_per_km", "stats:trips"],
        {"stats": stats},
        full_feature_names=False,
        on_demand={"ratios": odfv},
    )
    assert req.outputs == ["fare_per_km", "trips"]
    (view,) = req.views
    assert sorted((c.output, c.hidden) for c in view.columns) == [
        (hidden_name("stats", "fare"), True),
        ("trips", False),
    ]
    (demand,) = req.on_demand
    assert demand.inputs == (("fare", hidden_name("stats", "fare")), ("distance_km", "distance_km"))
    assert req.request_fields == ("distance_km",)
    assert req.output_dtypes == {"fare_per_km": Float64, "trips": Int64}


def test_compile_on_demand_refs_are_checked_like_others() -> None:
    views, demand = {"stats": stats}, {"ratios": ratios()}
    with pytest.raises(FeatureNotFoundError):
        compile_requests(["ratios:nope"], views, full_feature_names=False, on_demand=demand)
    with pytest.raises(InvalidFeatureRefError, match="clashes"):
        compile_requests(
            ["ratios:busy"], views, full_feature_names=False, on_demand=demand, reserved=["busy"]
        )


def test_entity_dataframe_must_carry_request_fields() -> None:
    req = compile_requests(
        ["ratios:hour_paris"],
        {"stats": stats},
        full_feature_names=False,
        on_demand={"ratios": ratios()},
    )
    assert req.views == ()  # reads no view feature
    check_entity_columns(["event_timestamp", "at"], req, "event_timestamp")
    with pytest.raises(EntityDataFrameError, match="missing request field 'at'"):
        check_entity_columns(["event_timestamp"], req, "event_timestamp")


def _write(repo: Path, body: str) -> None:
    repo.mkdir(exist_ok=True)
    (repo / "defs.py").write_text(
        "from datetime import timedelta\n"
        "from skewless import *\n"
        "from skewless.expr import col\n"
        "driver = Entity('driver', join_keys=['driver_id'])\n"
        "src = FileSource('s.parquet', timestamp_field='ts')\n"
        "stats = FeatureView('stats', entities=[driver], schema=[Field('fare', Float64)], "
        "source=src)\n" + body
    )


def test_repo_collects_on_demand_views_and_checks_their_sources(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(
        repo,
        "r = RequestSource('r', schema=[Field('km', Float64)])\n"
        "o = OnDemandFeatureView('o', sources=[stats, r], "
        "schema=[Field('per_km', Float64, expr=col('fare') / col('km'))])\n"
        "svc = FeatureService('svc', features=[o])\n",
    )
    contents = load_repo(repo)
    assert list(contents.on_demand_views) == ["o"]
    assert contents.feature_services["svc"].refs == ["o:per_km"]
    _write(
        repo,
        "other = FeatureView('other', entities=[driver], schema=[Field('fare', Int64)], "
        "source=src)\n"
        "o = OnDemandFeatureView('o', sources=[other], "
        "schema=[Field('x', Int64, expr=col('fare') * 2)])\n"
        "other = FeatureView('gone', entities=[driver], schema=[Field('y', Int64)], source=src)\n",
    )
    with pytest.raises(DefinitionError, match="reads feature view 'other', which the repo"):
        load_repo(repo)


def test_repo_refuses_a_view_and_an_on_demand_view_of_one_name(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(
        repo,
        "r = RequestSource('r', schema=[Field('km', Float64)])\n"
        "o = OnDemandFeatureView('stats', sources=[r], "
        "schema=[Field('x', Float64, expr=col('km') * 2)])\n",
    )
    with pytest.raises(DefinitionError, match="share one namespace"):
        load_repo(repo)


def test_repo_refuses_a_request_field_of_two_types(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(
        repo,
        "r1 = RequestSource('r1', schema=[Field('amount', Float64)])\n"
        "r2 = RequestSource('r2', schema=[Field('amount', Int64)])\n"
        "a = OnDemandFeatureView('a', sources=[r1], "
        "schema=[Field('x', Float64, expr=col('amount') * 2)])\n"
        "b = OnDemandFeatureView('b', sources=[r2], "
        "schema=[Field('y', Int64, expr=col('amount') + 1)])\n",
    )
    with pytest.raises(DefinitionError, match="request field 'amount' is int64 here but float64"):
        load_repo(repo)


def test_compile_shares_hidden_inputs_between_on_demand_views() -> None:
    twice = OnDemandFeatureView(
        "twice", sources=[stats[["fare"]]], schema=[Field("fare2", Float64, expr=col("fare") * 2)]
    )
    req = compile_requests(
        ["ratios:fare_per_km", "twice:fare2", "stats:fare"],
        {"stats": stats},
        full_feature_names=True,
        on_demand={"ratios": ratios(), "twice": twice},
    )
    assert req.outputs == ["ratios__fare_per_km", "twice__fare2", "stats__fare"]
    (view,) = req.views
    assert sorted((c.output, c.hidden) for c in view.columns) == [
        (hidden_name("stats", "fare"), True),
        ("stats__fare", False),
    ]
    assert [r.inputs for r in req.on_demand] == [
        (("fare", hidden_name("stats", "fare")), ("distance_km", "distance_km")),
        (("fare", hidden_name("stats", "fare")),),
    ]


def test_expressions_nest_at_most_max_depth() -> None:
    deep = col("fare")
    for _ in range(70):
        deep = deep + 1
    with pytest.raises(DefinitionError, match="nests 71 levels deep, over the 64"):
        Field("x", Float64, expr=deep)
