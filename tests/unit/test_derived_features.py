"""Derived features (Field(..., expr=...)) without Spark: the definition, the schema rule's
expression inputs, the plan-time type check over real footers and headers, the
fingerprint, the registry round trip and `describe`."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from skewless import (
    Bool,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
    Int32,
    Int64,
    String,
    UnixTimestamp,
)
from skewless.cli.main import app
from skewless.errors import DefinitionError, ExpressionTypeError
from skewless.expr import coalesce, col, hour, is_weekend, lit, log1p, when
from skewless.expr.nodes import Call, Col, Lit, to_data
from skewless.fingerprint import feature_view_fingerprint
from skewless.plan import AddObject, UpdateObject
from skewless.registry import SqliteRegistry
from skewless.rules.schema import (
    DATE,
    NANOS,
    TEXT,
    ColumnType,
    MixedUnits,
    Role,
    Unsupported,
    check_schema,
    derived_type,
)
from skewless.types import Array

driver = Entity("driver", join_keys=["driver_id"])
src = FileSource("data/trips.parquet", timestamp_field="ts")


def trips(*fields: Field, **kw: object) -> FeatureView:
    args: dict[str, object] = {
        "entities": [driver],
        "schema": [Field("km", Float64), Field("minutes", Int32), *fields],
        "source": src,
        "ttl": timedelta(hours=2),
    }
    args.update(kw)
    return FeatureView("trips", **args)


SPEED = Field("speed", Float64, expr=col("km") / (col("minutes") / 60))


# --- the definition ----------------------------------------------------------------------


def test_field_takes_an_expression_positionally_and_keeps_its_node() -> None:
    expr = col("km") / (col("minutes") / 60)
    field = Field("speed", Float64, expr=expr)
    assert field.expr == expr.node
    assert isinstance(field.expr, Call)  # the node, never the Expr (whose == builds)
    assert field.derived and not Field("km", Float64).derived
    assert field == Field("speed", Float64, expr=col("km") / (col("minutes") / 60))
    assert field != Field("speed", Float64, expr=col("km") / (col("minutes") / 61))
    assert hash(field) == hash(Field("speed", Float64, expr=expr.node))
    # the canonical data, as the registry stores it, is taken too
    assert Field("speed", Float64, expr=to_data(expr.node)) == field


def test_field_json_has_the_expression_as_data_and_nothing_without_one() -> None:
    assert Field("km", Float64).model_dump(mode="json") == {
        "name": "km",
        "dtype": "float64",
        "description": "",
    }
    dumped = Field("km2", Float64, expr=col("km") * 2).model_dump(mode="json")
    assert dumped["expr"] == {
        "fn": "mul",
        "args": [{"col": "km"}, {"lit": 2, "type": "int64"}],
    }
    assert Field.model_validate(json.loads(json.dumps(dumped))) == Field(
        "km2", Float64, expr=col("km") * 2
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (5, "expected an expression built with skewless.expr.*a constant is lit\\(5\\)"),
        ("col('a')", "expected an expression"),
        (when(col("a") > 1, 2), "needs .otherwise"),
        ({"fn": "div", "args": "x"}, "malformed call"),
        ({"col": "a", "extra": 1}, "not an expression node"),
    ],
)
def test_field_refuses_what_is_no_expression(expr: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as info:
        Field("x", Float64, expr=expr)
    assert info.value.field == "expr"


def test_feature_view_lists_derived_features_among_its_features() -> None:
    weekend = Field("weekend", Bool, expr=is_weekend(col("ts"), tz="Europe/Paris"))
    view = trips(SPEED, weekend, Field("trips", Int64))
    assert view.feature_names == ("km", "minutes", "speed", "weekend", "trips")
    assert [f.name for f in view.derived] == ["speed", "weekend"]
    assert view.feature("speed").expr == SPEED.expr
    assert trips().derived == ()


def test_feature_view_with_derived_features_round_trips_through_json() -> None:
    view = trips(
        SPEED,
        Field("log_fare", Float64, expr=log1p(coalesce(col("fare"), 0.0))),
        Field("band", Int64, expr=when(col("km") < 5, 1).when(col("km") < 20, 2).otherwise(3)),
        Field("late", Bool, expr=hour(col("ts"), tz="America/New_York") >= 22),
        Field("nan_safe", Float64, expr=lit(float("nan"))),
    )
    spec = json.loads(json.dumps(view.model_dump(mode="json")))
    assert FeatureView.model_validate(spec) == view


def _refused(*fields: Field, keys: list[Field] | None = None) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        trips(*fields, schema=[*(keys or []), Field("km", Float64), *fields])
    assert info.value.object_kind == "feature view"
    assert info.value.object_name == "trips"
    return info.value


def test_a_join_key_cannot_be_derived() -> None:
    err = _refused(SPEED, keys=[Field("driver_id", Int64, expr=col("other_id"))])
    assert err.field == "schema.driver_id"
    assert "join key 'driver_id' has an expression" in err.detail


def test_a_derived_feature_cannot_read_a_derived_feature_or_itself() -> None:
    err = _refused(SPEED, Field("fast", Bool, expr=col("speed") > 100))
    assert err.field == "schema.fast"
    assert "col('speed'), another derived feature" in err.detail
    assert str(err).startswith("feature view 'trips': field 'schema.fast': ")
    itself = _refused(Field("score", Float64, expr=col("score") * 2))
    assert itself.field == "schema.score"
    assert "reads the feature itself" in itself.detail


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (Call("nope", (Col("km"),)), "nope(col('km')): unknown function 'nope'"),
        (Call("div", (Col("km"),)), "div() takes 2 arguments, got 1"),
        (Call("round", (Col("km"),), 99), "round() digits must be an integer from -15 to 15"),
        (
            Call("add", (Lit(1, "int64"), Call("hour", (Col("ts"),), "Mars/Olympus"))),
            "unknown time zone 'Mars/Olympus'",
        ),
    ],
)
def test_a_malformed_expression_is_refused_at_definition(expr: Call, message: str) -> None:
    err = _refused(Field("x", Float64, expr=expr))
    assert err.field == "schema.x"
    assert message in err.detail


# --- the schema rule ----------------------------------------------------------------------


def _columns(**more: ColumnType) -> dict[str, ColumnType]:
    return {"ts": UnixTimestamp, "driver_id": Int64, "km": Float64, "minutes": Int32, **more}


def test_schema_rule_reads_a_derived_features_inputs_not_the_feature() -> None:
    view = trips(
        Field("total", Float64, expr=col("km") + col("fare") + col("driver_id")),
        Field("fare_day", Int64, expr=hour(col("ts")) + col("fare").cast(Int64)),
    )
    check = check_schema(view, _columns(fare=Float32, total=String))
    assert check.problems == ()
    assert [(r.column, r.role, r.dtype) for r in check.reads] == [
        ("ts", Role.EVENT_TIME, UnixTimestamp),
        ("driver_id", Role.JOIN_KEY, Int64),
        ("km", Role.FEATURE, Float64),
        ("minutes", Role.FEATURE, Int32),
        ("fare", Role.INPUT, Float32),  # once, as the source holds it
    ]
    assert check.column_types == {
        "ts": UnixTimestamp,
        "driver_id": Int64,
        "km": Float64,
        "minutes": Int32,
        "fare": Float32,
    }
    # the source's own `total` column is not what the feature holds: it is never read
    assert derived_type(view.feature("total"), check) == Float64


@pytest.mark.parametrize(
    ("actual", "read_as"),
    [
        (TEXT, String),
        (NANOS, UnixTimestamp),
        (DATE, UnixTimestamp),
        (Array(Int64), Array(Int64)),
        (Int32, Int32),
    ],
)
def test_schema_rule_reads_an_expression_input_as_the_source_holds_it(
    actual: ColumnType, read_as: object
) -> None:
    view = trips(Field("x", Bool, expr=col("raw").is_null()))
    check = check_schema(view, _columns(raw=actual))
    assert check.problems == ()
    (read,) = [r for r in check.reads if r.role is Role.INPUT]
    assert (read.column, read.dtype, read.source) == ("raw", read_as, actual)


def test_schema_rule_names_the_derived_features_an_input_problem_stops() -> None:
    view = trips(
        Field("a", Bool, expr=col("tiny").is_null()),
        Field("b", Bool, expr=col("tiny").is_null() & col("gone").is_null()),
        Field("c", Bool, expr=col("mixed").is_null()),
    )
    mixed = MixedUnits("x/part-0.parquet", "x/part-1.parquet", "unix_timestamp")
    found = check_schema(view, _columns(tiny=Unsupported("int8"), mixed=mixed)).problems
    assert [(p.column, p.role, p.declared) for p in found] == [
        ("tiny", Role.INPUT, None),
        ("gone", Role.INPUT, None),
        ("mixed", Role.INPUT, None),
    ]
    assert [str(p) for p in found] == [
        "expression input 'tiny' (of derived features 'a', 'b') is int8 (not a type "
        "skewless can carry) in the source",
        "expression input 'gone' (of derived feature 'b') is missing from the source",
        f"expression input 'mixed' (of derived feature 'c') is {mixed.name} in the source",
    ]


def test_schema_rule_reads_named_columns_in_their_own_roles() -> None:
    created = FileSource("data/trips.parquet", timestamp_field="ts", created_timestamp_column="c")
    lag = (col("c") - col("ts")).total_seconds() + col("minutes") + col("driver_id")
    view = trips(
        source=created,
        schema=[
            Field("driver_id", Int32),
            Field("minutes", Int32),
            Field("lag_s", Float64, expr=lag),
        ],
    )
    check = check_schema(view, _columns(c=NANOS, driver_id=Int32))
    assert check.problems == ()
    assert Role.INPUT not in {r.role for r in check.reads}
    assert check.column_types["c"] == UnixTimestamp
    assert check.column_types["driver_id"] == Int32  # the pinned key type
    assert derived_type(view.feature("lag_s"), check) == Float64


def test_derived_type_widens_into_the_declared_type_or_names_the_fault() -> None:
    view = trips(
        Field("m", Int64, expr=col("minutes")),  # int32 read, declared int64
        Field("bad", Float64, expr=col("km") + "x"),
        Field("narrow", Float32, expr=col("km") * 2),
    )
    check = check_schema(view, _columns())
    assert derived_type(view.feature("m"), check) == Int32
    with pytest.raises(ExpressionTypeError) as bad:
        derived_type(view.feature("bad"), check)
    assert (bad.value.expression, bad.value.detail) == (
        "col('km') + 'x'",
        "+ does not join strings (float64, string); use concat()",
    )
    with pytest.raises(ExpressionTypeError, match=r"add \.cast\(Float32\)"):
        derived_type(view.feature("narrow"), check)


# --- plan: real footers and headers -----------------------------------------------------

# What pandas writes by default: nanosecond timestamps, int64 and float64 columns.
TRIPS = pd.DataFrame(
    {
        "driver_id": [1001, 1002],
        "ts": pd.to_datetime(["2024-03-01 12:00:00", "2024-03-02 23:30:00"]),
        "km": [12.5, 0.0],
        "minutes": pd.array([30, 0], dtype="int32"),
        "fare": [20.0, None],
        "city": ["Paris", "Lyon"],
        "tiny": pd.array([1, 2], dtype="int8"),
    }
)

DEFS = """
from skewless import *
from skewless.expr import *
driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView(
    "trips",
    entities=[driver],
    schema=[Field("km", Float64), Field("minutes", Int32), {fields}],
    source=FileSource("data/{data}", timestamp_field="ts"{csv}),
)
"""


def repo(root: Path, fields: str, *, csv: bool = False) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "feature_store.yaml").write_text("project: unit\n")
    data = "trips.csv" if csv else "trips.parquet"
    fmt = ', file_format="csv"' if csv else ""
    (root / "features.py").write_text(
        textwrap.dedent(DEFS.format(fields=fields, data=data, csv=fmt))
    )
    if csv:
        TRIPS.to_csv(root / "data" / data, index=False)
    else:
        TRIPS.to_parquet(root / "data" / data)
    return root


def _plan_error(root: Path) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        FeatureStore(root).plan()
    return info.value


def test_plan_records_derived_features_over_pandas_parquet(tmp_path: Path) -> None:
    fields = (
        'Field("speed", Float64, expr=col("km") / (col("minutes") / 60)), '
        'Field("m", Int64, expr=col("minutes")), '
        'Field("late", Bool, expr=hour(col("ts"), tz="Europe/Paris") >= 22), '
        'Field("fare2", Float64, expr=coalesce(col("fare"), 0.0) * 2), '
        'Field("shout", String, expr=upper(col("city")))'
    )
    plan = FeatureStore(repo(tmp_path, fields)).plan()
    stage = next(s for s in plan.stages if s.name == "trips")
    assert isinstance(stage, AddObject)
    schema = {f["name"]: f for f in stage.spec["schema_"]}
    assert "expr" not in schema["km"]
    assert schema["late"]["expr"] == {
        "fn": "ge",
        "args": [
            {"fn": "hour", "args": [{"col": "ts"}], "opt": "Europe/Paris"},
            {"lit": 22, "type": "int64"},
        ],
    }


def test_plan_names_file_view_feature_and_sub_expression_of_a_type_error(tmp_path: Path) -> None:
    err = _plan_error(repo(tmp_path, 'Field("speed", Float64, expr=col("km") + "x")'))
    assert str(err) == (
        "features.py: feature view 'trips': field 'schema.speed': col('km') + 'x': + does "
        "not join strings (float64, string); use concat()"
    )
    assert (err.file, err.object_name, err.field) == ("features.py", "trips", "schema.speed")
    # the fault is the sub-expression, not the whole one
    err = _plan_error(
        repo(tmp_path, 'Field("x", Float64, expr=coalesce(col("fare"), 0.0) + upper(col("km")))')
    )
    assert err.detail == "upper(col('km')): upper() takes a string, got float64"
    err = _plan_error(repo(tmp_path, 'Field("m", Int32, expr=col("minutes") + 1)'))
    assert err.detail == (
        "col('minutes') + 1: gives int64 but the feature is declared int32; add "
        ".cast(Int32) to convert"
    )


def test_plan_names_an_input_the_source_lacks_or_cannot_carry(tmp_path: Path) -> None:
    err = _plan_error(repo(tmp_path, 'Field("x", Float64, expr=col("kms") * 2)'))
    assert err.field == "schema"
    assert err.detail == (
        "source data/trips.parquet: expression input 'kms' (of derived feature 'x') is "
        "missing from the source"
    )
    err = _plan_error(repo(tmp_path, 'Field("x", Int64, expr=col("tiny").cast(Int64))'))
    assert err.detail == (
        "source data/trips.parquet: expression input 'tiny' (of derived feature 'x') is "
        "int8 (not a type skewless can carry) in the source"
    )


def test_plan_reads_a_csv_input_column_as_text(tmp_path: Path) -> None:
    # `fare` is no feature of the view: in a CSV source it is a string until cast
    err = _plan_error(repo(tmp_path, 'Field("fare2", Float64, expr=col("fare") * 2)', csv=True))
    assert err.detail == "col('fare') * 2: * takes numbers, got string, int64"
    assert err.field == "schema.fare2"
    ok = repo(tmp_path, 'Field("fare2", Float64, expr=col("fare").cast(Float64) * 2)', csv=True)
    assert FeatureStore(ok).plan().has_changes
    # a stored feature is read as declared, in CSV too
    ok = repo(tmp_path, 'Field("km2", Float64, expr=col("km") * 2)', csv=True)
    assert FeatureStore(ok).plan().has_changes


# --- fingerprint --------------------------------------------------------------------------


def fp_view(expr: object, description: str = "") -> FeatureView:
    return trips(Field("speed", Float64, expr=expr, description=description))


def test_fingerprint_golden_value_of_a_view_with_an_expression() -> None:
    """A change here changes the stored hash of every view with a derived feature."""
    fp = feature_view_fingerprint(fp_view(col("km") / (col("minutes") / 60)))
    assert fp.to_dict() == {"data_hash": "fda019e4475d2965", "metadata_hash": "6fe705fd8f32ed43"}


def test_fingerprint_follows_the_expressions_structure_not_its_text() -> None:
    base = feature_view_fingerprint(fp_view(col("km") / (col("minutes") / 60)))
    minutes = col("minutes")
    hours = minutes / 60
    rewritten = feature_view_fingerprint(fp_view((col("km")) / (hours)))
    assert rewritten == base
    other_literal = feature_view_fingerprint(fp_view(col("km") / (col("minutes") / 60.0)))
    assert other_literal.data_hash != base.data_hash
    described = feature_view_fingerprint(
        fp_view(col("km") / (col("minutes") / 60), description="km per hour")
    )
    assert described.data_hash == base.data_hash
    assert described.metadata_hash != base.metadata_hash
    stored = feature_view_fingerprint(trips(Field("speed", Float64)))
    assert stored.data_hash != base.data_hash  # derived or read: different data


# --- registry, describe, plan of an edit --------------------------------------------------


def test_applied_derived_features_round_trip_and_show_in_describe(tmp_path: Path) -> None:
    fields = (
        'Field("speed", Float64, expr=col("km") / (col("minutes") / 60), description="km/h"), '
        'Field("weekend", Bool, expr=is_weekend(col("ts"), tz="Europe/Paris"))'
    )
    root = repo(tmp_path, fields)
    store = FeatureStore(root)
    plan, _ = store.apply()
    defined = store.load_repo().feature_views["trips"]
    applied = store.get_feature_view("trips")
    # as defined, with the key type plan records (source_schema.with_key_types)
    assert applied.model_copy(update={"schema_": applied.schema_[1:]}) == defined
    assert feature_view_fingerprint(applied) == next(
        s.fingerprint for s in plan.stages if s.name == "trips"
    )
    record = SqliteRegistry(root / "data" / "registry.db", "unit").get("feature_view", "trips")
    assert record is not None and record.definition() == applied
    assert not store.plan().has_changes

    shown = CliRunner().invoke(app, ["describe", "trips", "--repo", str(root), "--wide"])
    assert shown.exit_code == 0, shown.output
    assert "Derived features" in shown.output
    lines = [ln for ln in shown.output.splitlines() if "speed" in ln and "│" in ln]
    assert any("col('km') / (col('minutes') / 60)" in ln for ln in lines), shown.output
    assert "is_weekend(col('ts'), tz='Europe/Paris')" in shown.output


def test_editing_an_expression_is_a_data_change(tmp_path: Path) -> None:
    root = repo(tmp_path, 'Field("speed", Float64, expr=col("km") / (col("minutes") / 60))')
    FeatureStore(root).apply()
    repo(tmp_path, 'Field("speed", Float64, expr=(col("km")) / ((col("minutes")) / 60))')
    assert not FeatureStore(root).plan().has_changes  # the same structure
    repo(tmp_path, 'Field("speed", Float64, expr=col("km") / (col("minutes") / 60.5))')
    plan = FeatureStore(root).plan()
    (stage,) = [s for s in plan.stages if s.name == "trips"]
    assert isinstance(stage, UpdateObject)
    assert stage.data_changed
    assert stage.changed_fields == ("schema[speed].expr",)
    assert plan.views_to_materialize == ["trips"]
