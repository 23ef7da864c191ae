"""Schedule, FeatureView(materialization=..., expected_freshness=...), their fingerprints,
and feature_store.yaml's `materialization:` default and `scheduler:` settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from skewless import (
    Entity,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    OnDemandFeatureView,
    Schedule,
)
from skewless.config import ScheduleConfig, SchedulerConfig, parse_config, parse_duration
from skewless.errors import ConfigError, DefinitionError, SkewlessError
from skewless.expr import col
from skewless.fingerprint import feature_view_fingerprint
from skewless.repo import load_repo

driver = Entity("driver", join_keys=["driver_id"])
HOURLY = Schedule("0 * * * *", delay=timedelta(minutes=10), catch_up=timedelta(hours=6))


def stats(**kw: Any) -> FeatureView:
    args: dict[str, Any] = {
        "entities": [driver],
        "schema": [Field("driver_id", Int64), Field("rating", Float64)],
        "source": FileSource("data/stats.parquet", timestamp_field="ts"),
        "ttl": timedelta(hours=2),
    }
    args.update(kw)
    return FeatureView("stats", **args)


def config(**sections: Any) -> Any:
    return parse_config({"project": "p", **sections}, "feature_store.yaml", environ={})


# --- Schedule ---------------------------------------------------------------------------


def test_schedule_takes_the_cron_expression_positionally_with_defaults() -> None:
    s = Schedule("0 * * * *")
    assert s == Schedule(cron="0 * * * *")
    assert (s.delay, s.catch_up, s.timezone) == (timedelta(0), timedelta(days=1), "UTC")


def test_schedule_accepts_a_seconds_field_and_croniter_aliases() -> None:
    assert Schedule("* * * * * */10").cron == "* * * * * */10"
    assert Schedule("@hourly").cron == "@hourly"
    assert Schedule("  0   2 * * 1-5 ").cron == "0 2 * * 1-5"  # whitespace normalized


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("0 * * *", "has 4 fields: a schedule takes 5"),
        ("0 * * * * * 2030", "has 7 fields"),
        ("", "has 0 fields"),
        ("61 * * * *", "out of range"),  # croniter's own words
        ("*/0 * * * *", "step '0'"),
        ("H * * * *", "hash_id"),
        ("0 0 31 2 *", "never ticks"),
    ],
)
def test_schedule_refuses_a_bad_cron_expression_naming_it(cron: str, says: str) -> None:
    with pytest.raises(DefinitionError) as info:
        Schedule(cron)
    message = str(info.value)
    assert "field 'cron'" in message
    assert f"cron expression {' '.join(cron.split())!r}" in message
    assert says in message


@pytest.mark.parametrize(
    ("kwargs", "field", "says"),
    [
        ({"delay": timedelta(seconds=-1)}, "delay", "delay must be zero or positive, got -0:00:01"),
        ({"catch_up": timedelta(minutes=-5)}, "catch_up", "catch_up must be zero or positive"),
        ({"catch_up": timedelta(days=4_000_000)}, "catch_up", "at most 10,000 years"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "localtime"}, "timezone", "unknown time zone 'localtime'"),
        ({"timezone": "posix/Europe/Berlin"}, "timezone", "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
        ({"timezone": ""}, "timezone", "unknown time zone ''"),
    ],
)
def test_schedule_refuses_bad_arguments_naming_the_field(
    kwargs: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(
        DefinitionError, match=f"schedule '0 \\* \\* \\* \\*': field '{field}'"
    ) as e:
        Schedule("0 * * * *", **kwargs)
    assert says in str(e.value)


def test_schedule_takes_zero_delay_and_catch_up_and_iana_zones() -> None:
    s = Schedule("0 * * * *", delay=timedelta(0), catch_up=timedelta(0), timezone="Europe/Berlin")
    assert s.zone.key == "Europe/Berlin"


# --- FeatureView -----------------------------------------------------------------------


def test_feature_view_holds_a_schedule_and_expected_freshness() -> None:
    v = stats(materialization=HOURLY, expected_freshness=timedelta(hours=3))
    assert v.materialization == HOURLY
    assert v.expected_freshness == timedelta(hours=3)
    stored = v.model_dump(mode="json", by_alias=True)
    assert stored["materialization"] == {
        "cron": "0 * * * *",
        "delay": "PT10M",
        "catch_up": "PT6H",
        "timezone": "UTC",
    }
    assert stored["expected_freshness"] == "PT3H"
    assert FeatureView.model_validate(stored) == v


def test_feature_view_stored_form_omits_unset_schedule_fields() -> None:
    stored = stats().model_dump(mode="json", by_alias=True)
    assert "materialization" not in stored
    assert "expected_freshness" not in stored
    only_freshness = stats(expected_freshness=timedelta(hours=1)).model_dump(mode="json")
    assert "materialization" not in only_freshness


@pytest.mark.parametrize("freshness", [timedelta(0), timedelta(seconds=-1)])
def test_feature_view_refuses_expected_freshness_not_positive(freshness: timedelta) -> None:
    with pytest.raises(DefinitionError, match="field 'expected_freshness'.*must be positive"):
        stats(expected_freshness=freshness)


def test_feature_view_stored_form_with_a_bad_schedule_names_the_field() -> None:
    stored = stats(materialization=HOURLY).model_dump(mode="json", by_alias=True)
    stored["materialization"]["timezone"] = "Nowhere/Land"
    with pytest.raises(DefinitionError, match="field 'timezone': unknown time zone 'Nowhere/Land'"):
        FeatureView.model_validate(stored)


def test_on_demand_view_takes_no_schedule() -> None:
    with pytest.raises(DefinitionError, match="unknown argument 'materialization'"):
        OnDemandFeatureView(
            "o",
            sources=[stats()],
            schema=[Field("double", Float64, expr=col("rating") * 2)],
            materialization=HOURLY,
        )


def test_repo_shares_a_schedule_between_views_and_names_the_file_of_a_bad_one(
    tmp_path: Path,
) -> None:
    head = (
        "from datetime import timedelta\n"
        "from skewless import *\n"
        "driver = Entity('driver', join_keys=['driver_id'])\n"
        "src = FileSource('s.parquet', timestamp_field='ts')\n"
    )
    views = (
        "a = FeatureView('a', entities=[driver], schema=[Field('x', Float64)], source=src, "
        "materialization=hourly)\n"
        "b = FeatureView('b', entities=[driver], schema=[Field('y', Float64)], source=src, "
        "materialization=hourly, expected_freshness=timedelta(hours=3))\n"
    )
    (tmp_path / "defs.py").write_text(
        head + "hourly = Schedule('0 * * * *', delay=timedelta(minutes=10))\n" + views
    )
    contents = load_repo(tmp_path)
    expected = Schedule("0 * * * *", delay=timedelta(minutes=10))
    assert contents.feature_views["a"].materialization == expected
    assert contents.feature_views["b"].materialization == expected
    assert contents.feature_views["b"].expected_freshness == timedelta(hours=3)
    (tmp_path / "defs.py").write_text(head + "hourly = Schedule('0 * * *')\n" + views)
    with pytest.raises(DefinitionError, match="defs.py: schedule '0 \\* \\* \\*': field 'cron'"):
        load_repo(tmp_path)


# --- fingerprints ------------------------------------------------------------------------


def test_fingerprint_schedule_and_expected_freshness_are_metadata() -> None:
    base = feature_view_fingerprint(stats())
    variants = [
        stats(materialization=HOURLY),
        stats(materialization=Schedule("30 * * * *")),
        stats(materialization=Schedule("0 * * * *", delay=timedelta(minutes=5))),
        stats(materialization=Schedule("0 * * * *", catch_up=timedelta(hours=1))),
        stats(materialization=Schedule("0 * * * *", timezone="Europe/Berlin")),
        stats(expected_freshness=timedelta(hours=3)),
        stats(materialization=HOURLY, expected_freshness=timedelta(hours=3)),
    ]
    prints = [feature_view_fingerprint(v) for v in variants]
    assert {p.data_hash for p in prints} == {base.data_hash}
    metadata = {p.metadata_hash for p in prints}
    assert base.metadata_hash not in metadata
    assert len(metadata) == len(variants)


def test_fingerprint_of_a_view_without_schedule_ignores_the_new_fields() -> None:
    """The stored form of a view without a schedule rebuilds to the same hashes: the
    golden values of tests/unit/test_fingerprint.py pin them."""
    v = stats()
    again = FeatureView.model_validate(v.model_dump(mode="json", by_alias=True))
    assert feature_view_fingerprint(again) == feature_view_fingerprint(v)


# --- feature_store.yaml -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("PT10M", timedelta(minutes=10)),
        ("P2D", timedelta(days=2)),
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        (600, timedelta(minutes=10)),
        (0.5, timedelta(milliseconds=500)),
        ("600", timedelta(minutes=10)),
        (0, timedelta(0)),
    ],
)
def test_config_materialization_reads_durations_in_each_form(
    written: object, expected: timedelta
) -> None:
    cfg = config(materialization={"cron": "0 * * * *", "delay": written, "catch_up": written})
    assert cfg.materialization is not None
    assert cfg.materialization.delay == expected
    assert cfg.materialization.catch_up == expected


@pytest.mark.parametrize("written", ["ten minutes", "10 m", "5w", "-5s", True, None, "P", "1e3"])
def test_config_bad_duration_names_its_path_and_value(written: object) -> None:
    with pytest.raises(ConfigError) as info:
        config(materialization={"cron": "0 * * * *", "delay": written})
    problems = info.value.problems
    assert len(problems) == 1
    assert problems[0].startswith("materialization.delay: expected a duration: ISO 8601")
    assert problems[0].endswith(f"got {written!r}")


def test_config_negative_iso_duration_is_refused_by_the_schedule_rule() -> None:
    with pytest.raises(ConfigError, match="materialization.catch_up: catch_up must be zero or"):
        config(materialization={"cron": "0 * * * *", "catch_up": "-PT5M"})


def test_config_materialization_problems_name_their_paths() -> None:
    with pytest.raises(ConfigError) as info:
        config(materialization={"cron": "0 * * *", "timezone": "Mars/Olympus", "every": 1})
    problems = info.value.problems
    assert problems[0].startswith("materialization.cron: cron expression '0 * * *' has 4 fields")
    assert problems[1].startswith("materialization.timezone: unknown time zone 'Mars/Olympus'")
    assert problems[2].startswith("materialization.every: unknown key")
    with pytest.raises(ConfigError, match="materialization.cron: missing"):
        config(materialization={"delay": "10m"})


def test_config_materialization_defaults_and_converts_to_a_schedule() -> None:
    assert config().materialization is None
    assert config(materialization=None).materialization is None
    cfg = config(
        materialization={
            "cron": "0 2 * * *",
            "delay": "PT10M",
            "catch_up": "2d",
            "timezone": "Europe/Berlin",
        }
    )
    assert cfg.materialization is not None
    assert cfg.materialization.to_schedule() == Schedule(
        "0 2 * * *",
        delay=timedelta(minutes=10),
        catch_up=timedelta(days=2),
        timezone="Europe/Berlin",
    )
    assert ScheduleConfig(cron="@daily").to_schedule() == Schedule("@daily")


def test_config_feast_materialization_section_is_still_refused_as_feasts() -> None:
    for section in (
        {"online_write_batch_size": 10},
        {"cron": "0 * * * *", "pull_latest_features": True},
    ):
        with pytest.raises(ConfigError, match="materialization: a Feast key"):
            config(materialization=section)


def test_config_scheduler_defaults() -> None:
    assert config().scheduler == SchedulerConfig(
        lease_seconds=60,
        max_attempts=3,
        backoff_seconds=30,
        max_backoff_seconds=600,
        poll_seconds=60,
    )
    cfg = config(scheduler={"lease_seconds": 5, "max_attempts": 1, "backoff_seconds": 0})
    assert (cfg.scheduler.lease_seconds, cfg.scheduler.max_attempts) == (5, 1)
    assert cfg.scheduler.backoff_seconds == 0


def test_config_scheduler_refuses_bad_values_naming_each_path() -> None:
    bad = {
        "lease_seconds": 0,
        "max_attempts": 0,
        "backoff_seconds": -1,
        "max_backoff_seconds": -1,
        "poll_seconds": 0,
        "lease": 3,
    }
    with pytest.raises(ConfigError) as info:
        config(scheduler=bad)
    paths = [p.split(":")[0] for p in info.value.problems]
    assert paths == [f"scheduler.{k}" for k in bad]
    assert "did you mean 'lease_seconds'?" in info.value.problems[-1]
    with pytest.raises(ConfigError, match="scheduler.lease_seconds"):
        config(scheduler={"lease_seconds": float("inf")})


def test_parse_duration_names_where_the_value_came_from() -> None:
    assert parse_duration("1d", "--chunk") == timedelta(days=1)
    with pytest.raises(SkewlessError, match="^--chunk: expected a duration.*got 'soon'$"):
        parse_duration("soon", "--chunk")
