from __future__ import annotations

from datetime import timedelta

from skewless import Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64
from skewless.fingerprint import (
    entity_fingerprint,
    feature_service_fingerprint,
    feature_view_fingerprint,
)

driver = Entity("driver", join_keys=["driver_id"], description="a driver")


def stats(**kw: object) -> FeatureView:
    args: dict[str, object] = {
        "entities": [driver],
        "schema": [Field("driver_id", Int64), Field("rating", Float64)],
        "source": FileSource("data/stats.parquet", timestamp_field="ts"),
        "ttl": timedelta(hours=2),
        "description": "hourly",
        "tags": {"team": "ml"},
        "owner": "a@b.c",
    }
    args.update(kw)
    return FeatureView("stats", **args)


def test_fingerprint_golden_values() -> None:
    """A change here changes every stored hash: it must be deliberate (bump SCHEME)."""
    assert entity_fingerprint(driver).to_dict() == {
        "data_hash": GOLDEN["entity_data"],
        "metadata_hash": GOLDEN["entity_meta"],
    }
    assert feature_view_fingerprint(stats()).to_dict() == {
        "data_hash": GOLDEN["view_data"],
        "metadata_hash": GOLDEN["view_meta"],
    }


GOLDEN = {
    "entity_data": "b73ccd7deb60c75b",
    "entity_meta": "426791a6f6c1f379",
    "view_data": "1c1c567aa8c2a5d2",
    "view_meta": "cc8de0e6a931d2f2",
}


def test_fingerprint_ignores_description_tags_owner_in_data_hash() -> None:
    base = feature_view_fingerprint(stats())
    for change in ({"description": "other"}, {"tags": {"team": "x"}}, {"owner": "z"}):
        fp = feature_view_fingerprint(stats(**change))
        assert fp.data_hash == base.data_hash
        assert fp.metadata_hash != base.metadata_hash


def test_fingerprint_data_hash_follows_data_fields() -> None:
    base = feature_view_fingerprint(stats()).data_hash
    changes: list[dict[str, object]] = [
        {"ttl": timedelta(hours=3)},
        {"ttl": None},
        {"source": FileSource("data/other.parquet", timestamp_field="ts")},
        {
            "source": FileSource(
                "data/stats.parquet", timestamp_field="ts", created_timestamp_column="c"
            )
        },
        {"schema": [Field("driver_id", Int64), Field("rating", Int64)]},
        {"entities": [Entity("driver", join_keys=["id"])]},
    ]
    hashes = {feature_view_fingerprint(stats(**c)).data_hash for c in changes}
    assert base not in hashes
    assert len(hashes) == len(changes)


def test_fingerprint_folds_parents() -> None:
    renamed = Entity("driver", join_keys=["driver_id"], description="someone who drives")
    a, b = feature_view_fingerprint(stats()), feature_view_fingerprint(stats(entities=[renamed]))
    assert a.data_hash == b.data_hash and a.metadata_hash != b.metadata_hash
    svc = FeatureService("svc", features=[stats()])
    before = feature_service_fingerprint(svc, {"stats": stats()})
    after = feature_service_fingerprint(svc, {"stats": stats(ttl=timedelta(hours=5))})
    assert before.data_hash != after.data_hash
    assert before.metadata_hash == after.metadata_hash
