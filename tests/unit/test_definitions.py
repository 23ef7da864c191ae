from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from skewless import (
    Array,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    String,
)
from skewless.definitions import DeltaSource
from skewless.errors import DefinitionError, FeatureNotFoundError
from skewless.timeutil import MAX_DURATION

driver = Entity("driver", join_keys=["driver_id"])
src = FileSource("data/stats.parquet", timestamp_field="ts")


def view(**kw: object) -> FeatureView:
    args: dict[str, object] = {
        "entities": [driver],
        "schema": [
            Field("driver_id", Int64),
            Field("rating", Float64),
            Field("tags", Array(String)),
        ],
        "source": src,
        "ttl": timedelta(hours=1),
    }
    args.update(kw)
    return FeatureView("stats", **args)


def test_entity_join_keys_default_to_its_name() -> None:
    assert Entity("customer").join_keys == ("customer",)
    assert Entity(name="trip", join_keys=["city", "zone"]).join_keys == ("city", "zone")


def test_feature_view_separates_keys_from_features() -> None:
    v = view()
    assert v.join_keys == ("driver_id",)
    assert v.feature_names == ("rating", "tags")
    assert [f.name for f in v.key_fields] == ["driver_id"]


def test_definitions_are_immutable() -> None:
    v = view()
    with pytest.raises(Exception, match="frozen"):
        v.name = "other"  # type: ignore[misc]


def test_definition_round_trips_through_json() -> None:
    v = view(source=DeltaSource("tables/x", timestamp_field="ts", created_timestamp_column="c"))
    assert FeatureView.model_validate(v.model_dump(mode="json")) == v


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": "bad name"}, "name", "not an identifier"),
        ({"ttl": timedelta(0)}, "ttl", "ttl must be positive"),
        ({"entities": []}, "entities", "at least one entity"),
        ({"schema": [Field("driver_id", Int64)]}, None, "no features"),
        ({"schema": [Field("x", Int64), Field("x", Int64)]}, None, "twice"),
        ({"schema": [Field("ts", Int64)]}, None, "timestamp columns"),
    ],
)
def test_feature_view_errors_name_object_and_field(
    kwargs: dict[str, object], field: str | None, message: str
) -> None:
    name = kwargs.pop("name", "stats")
    with pytest.raises(DefinitionError, match=message) as info:
        FeatureView(name, **{**_base(), **kwargs})
    assert info.value.object_kind == "feature view"
    if field:
        assert info.value.field == field


def _base() -> dict[str, object]:
    return {"entities": [driver], "schema": [Field("rating", Float64)], "source": src}


def test_field_and_entity_names_are_identifiers() -> None:
    with pytest.raises(DefinitionError, match="field 'name'"):
        Field("1abc", Int64)
    with pytest.raises(DefinitionError, match="reserved"):
        Field("__row", Int64)
    with pytest.raises(DefinitionError, match="join key 'a-b'"):
        Entity("e", join_keys=["a-b"])
    with pytest.raises(DefinitionError, match="unknown dtype"):
        Field("x", "int8")


def test_overlapping_entity_keys_are_refused() -> None:
    other = Entity("other", join_keys=["driver_id"])
    with pytest.raises(DefinitionError, match="overlap"):
        FeatureView("v", entities=[driver, other], schema=[Field("x", Int64)], source=src)


def test_projection_and_service() -> None:
    v = view()
    proj = v[["tags"]]
    assert proj.features == ("tags",)
    svc = FeatureService("svc", features=[proj])
    assert svc.refs == ["stats:tags"]
    whole = FeatureService("whole", features=[v])
    assert whole.refs == ["stats:rating", "stats:tags"]
    with pytest.raises(FeatureNotFoundError, match="Did you mean 'rating'"):
        v[["ratings"]]
    with pytest.raises(DefinitionError, match="listed twice"):
        FeatureService("dup", features=[v, proj])


def test_source_paths_resolve_against_the_repo(tmp_path: Path) -> None:
    repo = tmp_path
    assert FileSource("data/x.parquet", timestamp_field="ts").resolve(repo) == str(
        repo / "data/x.parquet"
    )
    assert FileSource("/abs/x", timestamp_field="ts").resolve(repo) == "/abs/x"
    assert FileSource("s3a://b/x", timestamp_field="ts").resolve(repo) == "s3a://b/x"


def test_feature_view_ttl_is_bounded_by_what_every_engine_represents() -> None:
    assert view(ttl=MAX_DURATION).ttl == MAX_DURATION == timedelta(days=3_652_500)
    # About 300,000 years: its microseconds overflow an int64 (Spark's bigint).
    with pytest.raises(DefinitionError) as info:
        view(ttl=timedelta(days=300_000 * 365))
    assert (info.value.object_kind, info.value.object_name) == ("feature view", "stats")
    assert info.value.field == "ttl"
    assert info.value.detail == (
        "ttl must be at most 10,000 years (3,652,500 days), the span of the times Spark "
        "holds (years 1 to 9999), got 109500000 days; None means no expiry"
    )
    with pytest.raises(DefinitionError, match="ttl must be at most"):
        view(ttl=MAX_DURATION + timedelta(microseconds=1))
    with pytest.raises(DefinitionError, match="ttl must be at most"):
        view(ttl=timedelta.max)
