"""The scheduler's cron math (skewless/scheduler/cron.py): ticks, catch-up plans, expected
freshness, and the project default. Pure: no clock, no JVM, no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless import Entity, FeatureView, Field, FileSource, Float64, Schedule
from skewless.config import parse_config
from skewless.scheduler import cron
from skewless.scheduler.cron import (
    Skipped,
    TickPlan,
    expected_freshness,
    interval_end,
    latest_tick,
    next_tick,
    plan_ticks,
    schedule_of,
    ticks_between,
)

HOURLY = Schedule("0 * * * *")
D = datetime(2026, 1, 10, tzinfo=UTC)  # a Saturday
H = timedelta(hours=1)


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


# --- ticks -------------------------------------------------------------------------------


def test_next_tick_is_strictly_after() -> None:
    assert next_tick(HOURLY, at(10, 9, 30)) == at(10, 10)
    assert next_tick(HOURLY, at(10, 10)) == at(10, 11)
    assert next_tick(HOURLY, at(10, 9, 59, 59) + timedelta(microseconds=999_999)) == at(10, 10)


def test_next_tick_reads_naive_as_utc_and_answers_in_utc() -> None:
    tick = next_tick(HOURLY, datetime(2026, 1, 10, 9, 30))
    assert tick == at(10, 10)
    assert tick.tzinfo is UTC
    paris = datetime(2026, 1, 10, 10, 30, tzinfo=Schedule("@daily", timezone="Europe/Paris").zone)
    assert next_tick(HOURLY, paris) == at(10, 10)  # 10:30 in Paris is 09:30 UTC


def test_latest_tick_counts_a_tick_exactly_at_the_instant() -> None:
    assert latest_tick(HOURLY, at(10, 10)) == at(10, 10)
    assert latest_tick(HOURLY, at(10, 10) - timedelta(microseconds=1)) == at(10, 9)
    assert latest_tick(HOURLY, at(10, 10) + timedelta(microseconds=1)) == at(10, 10)
    assert latest_tick(HOURLY, at(10, 10, 59, 59)) == at(10, 10)
    seconds = Schedule("* * * * * */10")
    assert latest_tick(seconds, at(10, 10, 0, 20)) == at(10, 10, 0, 20)
    assert latest_tick(seconds, at(10, 10, 0, 29)) == at(10, 10, 0, 20)


def test_latest_tick_is_none_before_the_first_tick_of_the_calendar() -> None:
    at_30s = Schedule("* * * * * 30")
    first_seconds = datetime(1, 1, 1, 0, 0, 10, tzinfo=UTC)
    assert latest_tick(at_30s, first_seconds) is None
    assert plan_ticks(at_30s, None, first_seconds) == TickPlan((), None)
    assert plan_ticks(at_30s, None, first_seconds + timedelta(seconds=20)).run == (
        first_seconds + timedelta(seconds=20),
    )


def test_next_tick_past_the_end_of_the_calendar_is_an_error() -> None:
    with pytest.raises(ValueError, match="has no tick after 9999-12-31T23:30:00"):
        next_tick(HOURLY, datetime(9999, 12, 31, 23, 30, tzinfo=UTC))


def test_ticks_between_excludes_after_and_includes_until() -> None:
    assert ticks_between(HOURLY, at(10, 9), at(10, 12)) == [at(10, 10), at(10, 11), at(10, 12)]
    assert ticks_between(HOURLY, at(10, 9, 30), at(10, 11, 59)) == [at(10, 10), at(10, 11)]
    assert ticks_between(HOURLY, at(10, 9), at(10, 9, 59)) == []
    assert ticks_between(HOURLY, at(10, 12), at(10, 9)) == []


def test_ticks_between_refuses_more_than_the_limit() -> None:
    assert len(ticks_between(HOURLY, at(10, 0), at(10, 3), limit=3)) == 3
    with pytest.raises(ValueError, match="ticks more than 3 times between"):
        ticks_between(HOURLY, at(10, 0), at(10, 4), limit=3)


def test_interval_end_is_the_tick_minus_the_delay() -> None:
    delayed = Schedule("0 * * * *", delay=timedelta(minutes=10))
    assert interval_end(delayed, at(10, 10)) == at(10, 9, 50)
    assert interval_end(HOURLY, at(10, 10)) == at(10, 10)
    far = Schedule("0 * * * *", delay=timedelta(days=3_000_000))
    assert interval_end(far, at(10, 10)) == datetime.min.replace(tzinfo=UTC)


def test_seconds_schedules_tick_every_second_of_the_field() -> None:
    every_10s = Schedule("* * * * * */10")
    assert ticks_between(every_10s, at(10, 9), at(10, 9, 0, 35)) == [
        at(10, 9, 0, 10),
        at(10, 9, 0, 20),
        at(10, 9, 0, 30),
    ]


# --- daylight saving (Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)


def test_dst_a_daily_tick_stays_at_local_time_across_the_change() -> None:
    nightly = Schedule("0 4 * * *", timezone="Europe/Berlin")
    ticks = ticks_between(nightly, at(27, 12, month=3), at(31, 12, month=3))
    assert ticks == [at(28, 3, month=3), at(29, 2, month=3), at(30, 2, month=3), at(31, 2, month=3)]


def test_dst_a_tick_in_the_spring_gap_runs_once_at_the_end_of_the_gap() -> None:
    at_2 = Schedule("0 2 * * *", timezone="Europe/Berlin")
    at_230 = Schedule("30 2 * * *", timezone="Europe/Berlin")
    # 03:00 summer time is 01:00 UTC; the days around it tick at 02:00 / 02:30 local
    expected_2 = [at(28, 1, month=3), at(29, 1, month=3), at(30, 0, month=3)]
    assert ticks_between(at_2, at(27, 12, month=3), at(30, 12, month=3)) == expected_2
    expected_230 = [at(28, 1, 30, month=3), at(29, 1, month=3), at(30, 0, 30, month=3)]
    assert ticks_between(at_230, at(27, 12, month=3), at(30, 12, month=3)) == expected_230
    quarterly = Schedule("*/15 * * * *", timezone="Europe/Berlin")
    spring = ticks_between(quarterly, at(29, 0, 30, month=3), at(29, 1, 15, month=3))
    # 01:45 winter time, then 03:00 and 03:15 summer time: nothing in the gap, no repeat
    assert spring == [at(29, 0, 45, month=3), at(29, 1, month=3), at(29, 1, 15, month=3)]


def test_dst_a_tick_in_the_repeated_autumn_hour_runs_in_each_offset() -> None:
    at_230 = Schedule("30 2 * * *", timezone="Europe/Berlin")
    ticks = ticks_between(at_230, at(24, 12, month=10), at(26, 12, month=10))
    # 02:30 summer time (00:30 UTC) and 02:30 winter time (01:30 UTC) on the 25th
    assert ticks == [at(25, 0, 30, month=10), at(25, 1, 30, month=10), at(26, 1, 30, month=10)]
    assert latest_tick(at_230, at(25, 1, 29, month=10)) == at(25, 0, 30, month=10)


def test_dst_an_hourly_schedule_ticks_every_hour_of_utc_across_both_changes() -> None:
    hourly = Schedule("0 * * * *", timezone="Europe/Berlin")
    for month, day in ((3, 29), (10, 25)):
        ticks = ticks_between(hourly, at(day - 1, 20, month=month), at(day, 6, month=month))
        assert ticks == [at(day - 1, 21, month=month) + k * H for k in range(10)]
        plan = plan_ticks(hourly, at(day - 1, 20, month=month), at(day, 6, month=month))
        assert plan.run == tuple(ticks)


# --- plan_ticks --------------------------------------------------------------------------


def test_plan_ticks_first_run_is_the_latest_tick_only() -> None:
    assert plan_ticks(HOURLY, None, at(10, 9, 30)) == TickPlan((at(10, 9),), None)
    assert plan_ticks(HOURLY, None, at(10, 9)) == TickPlan((at(10, 9),), None)


def test_plan_ticks_nothing_due_until_the_next_tick() -> None:
    assert plan_ticks(HOURLY, at(10, 9), at(10, 9, 59, 59)) == TickPlan((), None)
    assert plan_ticks(HOURLY, at(10, 9, 30), at(10, 9, 45)) == TickPlan((), None)
    assert plan_ticks(HOURLY, at(10, 11), at(10, 10)) == TickPlan((), None)  # handled ahead
    assert plan_ticks(HOURLY, at(10, 9), at(10, 10)) == TickPlan((at(10, 10),), None)


def test_plan_ticks_after_a_day_of_downtime_runs_the_bound_in_order() -> None:
    six_hours = Schedule("0 * * * *", catch_up=timedelta(hours=6))
    # now on a tick: the bound now - 6h is itself a tick, and it runs
    plan = plan_ticks(six_hours, at(10, 0), at(11, 0))
    assert plan.run == tuple(at(10, 18) + k * H for k in range(7))
    assert plan.skipped == Skipped(count=17, first=at(10, 1), last=at(10, 17))
    # now between ticks: the bound (18:30) falls between ticks, six run
    plan = plan_ticks(six_hours, at(10, 0), at(11, 0, 30))
    assert plan.run == tuple(at(10, 19) + k * H for k in range(6))
    assert plan.skipped == Skipped(count=18, first=at(10, 1), last=at(10, 18))


def test_plan_ticks_with_zero_catch_up_runs_the_latest_tick_only() -> None:
    none_back = Schedule("0 * * * *", catch_up=timedelta(0))
    plan = plan_ticks(none_back, at(10, 0), at(11, 0, 30))
    assert plan.run == (at(11, 0),)
    assert plan.skipped == Skipped(count=23, first=at(10, 1), last=at(10, 23))
    # a tick exactly at now is inside a zero bound
    assert plan_ticks(none_back, at(10, 0), at(10, 1)) == TickPlan((at(10, 1),), None)


def test_plan_ticks_within_catch_up_runs_every_missed_tick() -> None:
    plan = plan_ticks(HOURLY, at(10, 0, 10), at(10, 5, 59))  # default catch_up: a day
    assert plan == TickPlan(tuple(at(10, 1) + k * H for k in range(5)), None)


def test_plan_ticks_keeps_at_most_max_runs_the_newest() -> None:
    plan = plan_ticks(HOURLY, at(10, 0), at(10, 10), max_runs=3)
    assert plan.run == (at(10, 8), at(10, 9), at(10, 10))
    assert plan.skipped == Skipped(count=7, first=at(10, 1), last=at(10, 7))


def test_plan_ticks_caps_the_skipped_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cron, "SKIPPED_COUNT_CAP", 5)
    plan = plan_ticks(Schedule("0 * * * *", catch_up=timedelta(0)), at(10, 0), at(11, 0))
    assert plan.skipped == Skipped(count=5, first=at(10, 1), last=at(10, 23), exact=False)
    exact = plan_ticks(Schedule("0 * * * *", catch_up=timedelta(0)), at(10, 0), at(10, 5))
    assert exact.skipped == Skipped(count=4, first=at(10, 1), last=at(10, 4))


def test_plan_ticks_a_year_of_per_second_ticks_is_planned_without_listing_them() -> None:
    every_second = Schedule("* * * * * *", catch_up=timedelta(seconds=2))
    now = at(10, 0) + timedelta(days=365)
    plan = plan_ticks(every_second, at(10, 0), now)
    assert plan.run == (now - timedelta(seconds=2), now - timedelta(seconds=1), now)
    assert plan.skipped == Skipped(
        count=cron.SKIPPED_COUNT_CAP,
        first=at(10, 0, 0, 1),
        last=now - timedelta(seconds=3),
        exact=False,
    )


def test_plan_ticks_catch_up_of_millennia_stays_in_the_calendar() -> None:
    forever = Schedule("0 0 * * *", catch_up=timedelta(days=3_652_000))
    plan = plan_ticks(forever, datetime(1, 1, 1, 12, tzinfo=UTC), datetime(1, 1, 4, tzinfo=UTC))
    assert plan.run == tuple(datetime(1, 1, d, tzinfo=UTC) for d in (2, 3, 4))


def _reference_plan(
    minutes: set[int],
    hours: set[int],
    last_handled: datetime | None,
    now: datetime,
    catch_up: timedelta,
) -> TickPlan:
    """plan_ticks by enumeration: every whole minute, matched against the fields."""

    def is_tick(t: datetime) -> bool:
        return t.minute in minutes and t.hour in hours

    last_minute = now.replace(second=0, microsecond=0)
    if last_handled is None:
        t = last_minute
        while not is_tick(t):
            t -= timedelta(minutes=1)
        return TickPlan((t,), None)
    ticks: list[datetime] = []
    t = last_minute
    while t > last_handled:
        if is_tick(t):
            ticks.append(t)
        t -= timedelta(minutes=1)
    ticks.reverse()
    if not ticks:
        return TickPlan((), None)
    run = [x for x in ticks[:-1] if x >= now - catch_up] + [ticks[-1]]
    rest = [x for x in ticks if x not in run]
    skipped = Skipped(len(rest), rest[0], rest[-1]) if rest else None
    return TickPlan(tuple(run), skipped)


@settings(max_examples=200)
@given(
    minutes=st.sets(st.integers(0, 59), min_size=1, max_size=8),
    hours=st.just(set(range(24))) | st.sets(st.integers(0, 23), min_size=1, max_size=24),
    data=st.data(),
)
def test_plan_ticks_matches_a_brute_force_reference(
    minutes: set[int], hours: set[int], data: st.DataObject
) -> None:
    def instant(label: str) -> datetime:
        """Often exactly on a tick, so that ticks fall on last_handled and on the bound."""
        kind = data.draw(st.sampled_from(["tick", "minute", "any"]), label=f"{label} kind")
        if kind == "tick":
            day = data.draw(st.integers(0, 2), label=f"{label} day")
            hour = data.draw(st.sampled_from(sorted(hours)), label=f"{label} hour")
            minute = data.draw(st.sampled_from(sorted(minutes)), label=f"{label} minute")
            return D + timedelta(days=day, hours=hour, minutes=minute)
        if kind == "minute":
            return D + timedelta(minutes=data.draw(st.integers(0, 3 * 1440), label=label))
        return D + timedelta(
            microseconds=data.draw(st.integers(0, 3 * 86_400 * 10**6), label=label)
        )

    last_handled = data.draw(st.none() | st.just("drawn"), label="last handled")
    last = None if last_handled is None else instant("last_handled")
    now = instant("now")
    catch_up = max(now - instant("bound"), timedelta(0))
    expression = f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * *"
    schedule = Schedule(expression, catch_up=catch_up)
    expected = _reference_plan(minutes, hours, last, now, catch_up)
    assert plan_ticks(schedule, last, now) == expected


# --- expected freshness ------------------------------------------------------------------


def test_expected_freshness_is_the_declared_one_when_given() -> None:
    assert expected_freshness(HOURLY, timedelta(minutes=5), at(10, 9)) == timedelta(minutes=5)
    assert expected_freshness(None, timedelta(minutes=5), at(10, 9)) == timedelta(minutes=5)
    assert expected_freshness(None, None, at(10, 9)) is None


def test_expected_freshness_reaches_back_to_the_interval_end_of_the_tick_before_the_latest() -> (
    None
):
    delayed = Schedule("0 * * * *", delay=timedelta(minutes=10))
    # at 09:30 the 09:00 run may be under way; the 08:00 one (up to 07:50) must be done
    assert expected_freshness(delayed, None, at(10, 9, 30)) == H + timedelta(minutes=40)
    weekdays = Schedule("0 9 * * 1-5")  # 2026-01-12 is a Monday
    assert expected_freshness(weekdays, None, at(12, 12)) == timedelta(days=3, hours=3)
    assert expected_freshness(weekdays, None, at(13, 12)) == timedelta(days=1, hours=3)
    # all weekend the view materialized up to Friday 09:00 stays fresh
    sunday = at(11, 10)
    allowed = expected_freshness(weekdays, None, sunday)
    assert allowed is not None and sunday - at(9, 9) < allowed


def test_expected_freshness_keeps_a_daily_view_fresh_on_the_autumn_double_tick() -> None:
    berlin = Schedule("30 2 * * *", timezone="Europe/Berlin")  # 2026-10-25: 02:30 twice
    after_second = datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # 03:00 CET, after both ticks
    allowed = expected_freshness(berlin, None, after_second)
    materialized = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30 (CEST)
    assert allowed is not None and after_second - materialized <= allowed


def test_expected_freshness_before_two_ticks_stands_in_a_tick_one_gap_before() -> None:
    yearly_at_start = Schedule("0 0 1 1 *")
    assert expected_freshness(yearly_at_start, None, datetime(1, 6, 1, tzinfo=UTC)) == (
        datetime(1, 6, 1, tzinfo=UTC) - datetime(1, 1, 1, tzinfo=UTC)
    )


# --- the project default -----------------------------------------------------------------


def _view(**kw: Any) -> FeatureView:
    return FeatureView(
        "v",
        entities=[Entity("driver", join_keys=["driver_id"])],
        schema=[Field("rating", Float64)],
        source=FileSource("data/v.parquet", timestamp_field="ts"),
        **kw,
    )


def test_schedule_of_prefers_the_views_own_then_the_project_default() -> None:
    plain = parse_config({"project": "p"}, "f", environ={})
    default = parse_config(
        {"project": "p", "materialization": {"cron": "*/5 * * * *", "delay": "1m"}},
        "f",
        environ={},
    )
    own = Schedule("0 * * * *")
    assert schedule_of(_view(materialization=own), default) == own
    assert schedule_of(_view(), default) == Schedule("*/5 * * * *", delay=timedelta(minutes=1))
    assert schedule_of(_view(), plain) is None
