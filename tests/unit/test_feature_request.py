from __future__ import annotations

import pytest

from skewless import Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64
from skewless.errors import (
    EntityDataFrameError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    InvalidFeatureRefError,
)
from skewless.feature_request import (
    check_entity_columns,
    compile_requests,
    parse_ref,
    service_refs,
)

d = Entity("driver", join_keys=["driver_id"])
z = Entity("zone", join_keys=["city", "zone_id"])
src = FileSource("x.parquet", timestamp_field="ts")
a = FeatureView("a", entities=[d], schema=[Field("x", Int64), Field("y", Float64)], source=src)
b = FeatureView("b", entities=[d, z], schema=[Field("x", Int64)], source=src)
VIEWS = {"a": a, "b": b}


def test_compile_groups_by_view_and_keeps_request_order() -> None:
    reqs = compile_requests(["b:x", "a:y", "a:x"], VIEWS, full_feature_names=True)
    assert [r.name for r in reqs.views] == ["b", "a"]
    assert reqs.outputs == ["b__x", "a__y", "a__x"]


def test_compile_refuses_clashing_output_names() -> None:
    with pytest.raises(InvalidFeatureRefError, match="clashes with 'a:x'.*full_feature_names"):
        compile_requests(["a:x", "b:x"], VIEWS, full_feature_names=False)
    with pytest.raises(InvalidFeatureRefError, match="clashes with the entity dataframe"):
        compile_requests(["a:x"], VIEWS, full_feature_names=False, reserved=["x"])
    with pytest.raises(InvalidFeatureRefError, match="requested twice"):
        compile_requests(["a:x", "a:x"], VIEWS, full_feature_names=True)


def test_compile_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(FeatureViewNotFoundError, match="Did you mean 'a'"):
        compile_requests(["aa:x"], VIEWS, full_feature_names=False)
    with pytest.raises(FeatureNotFoundError, match="Did you mean 'y'") as info:
        compile_requests(["a:yy"], VIEWS, full_feature_names=False)
    assert info.value.view == "a"


@pytest.mark.parametrize("ref", ["x", "a:b:c", ":x", "a:"])
def test_parse_ref_rejects_malformed(ref: str) -> None:
    with pytest.raises(InvalidFeatureRefError):
        parse_ref(ref)


def test_service_refs_by_object_name_or_list() -> None:
    svc = FeatureService("svc", features=[a[["y"]], b])
    assert service_refs(svc, {}) == ["a:y", "b:x"]
    assert service_refs("svc", {"svc": svc}) == ["a:y", "b:x"]
    assert service_refs(["a:x"], {}) == ["a:x"]
    with pytest.raises(FeatureServiceNotFoundError, match="Did you mean 'svc'"):
        service_refs("svcc", {"svc": svc})


def test_entity_columns_checked_per_view() -> None:
    reqs = compile_requests(["b:x"], VIEWS, full_feature_names=False)
    check_entity_columns(
        ["driver_id", "city", "zone_id", "event_timestamp"], reqs, "event_timestamp"
    )
    with pytest.raises(EntityDataFrameError, match="join key 'zone_id' needed by feature view 'b'"):
        check_entity_columns(["driver_id", "city", "event_timestamp"], reqs, "event_timestamp")
    with pytest.raises(EntityDataFrameError, match="timestamp column 'ts'"):
        check_entity_columns(["driver_id", "city", "zone_id"], reqs, "ts")
