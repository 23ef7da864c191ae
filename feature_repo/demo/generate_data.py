"""Deterministic synthetic data for the rides feature repo.

Simulates a small ride-hailing marketplace (drivers working shifts in three cities,
customers, pickup zones with daily demand peaks) from a fixed seed and a fixed anchor
time, and writes what the repo's feature views read:

    data/driver_hourly_stats.parquet     one row per driver and hour (+ corrections)
    data/driver_profile.parquet          one row per driver and day
    data/customer_daily_profile.parquet  one row per customer and day
    data/zone_demand.parquet             one row per pickup zone and 15 minutes
    data/trips.parquet                   the demo's entity rows, labelled `completed`,
                                         with the route length quoted (`distance_km`)
    data/completed_trips.parquet         one event per completed trip, at its drop-off,
                                         with its fare (what the trip aggregations read)

The same arguments always give the same bytes of data. The data is deliberately
imperfect, the way production data is: some values are null, a few pipeline runs are
missing, some hours are re-emitted with corrections (same event time, later `created`),
some trips happen before any feature data exists or name unknown ids. And the world
changes: a storm crosses every city for the last 12 hours, so demand, surge and waits
of the last day drift from the days before (what `skewless drift zone_demand` shows).

Timestamps are written as microsecond UTC timestamps, the precision skewless keeps.

Run: python feature_repo/demo/generate_data.py [--drivers N --customers N --days N]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)  # the first instant with feature data
SEED = 20260101

MINUTE_US = 60 * 1_000_000
QUARTER_US = 15 * MINUTE_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
ANCHOR_US = int(ANCHOR.timestamp()) * 1_000_000

TS = pa.timestamp("us", tz="UTC")

# City -> number of pickup zones; zone ids restart at 1 in every city.
CITIES = {"lisbon": 6, "porto": 4, "madrid": 8}
LANGUAGE = {"lisbon": "pt", "porto": "pt", "madrid": "es"}
VEHICLES = np.array(["sedan", "suv", "van", "electric"])
SEATS = {"sedan": 4, "suv": 6, "van": 7, "electric": 4}
TIERS = np.array(["bronze", "silver", "gold", "platinum"])
PAYMENTS = np.array(["card", "wallet", "cash"])
UNKNOWN_ZONE = 99  # trips from outside the mapped zones (the airport, say)


# --- helpers ---------------------------------------------------------------------------


def _timestamps(micros: np.ndarray) -> pa.Array:
    """Microseconds since the epoch as a UTC timestamp column."""
    return pa.array(micros.astype(np.int64), pa.int64()).cast(TS)


def _column(values: np.ndarray, dtype: pa.DataType, null: np.ndarray | None = None) -> pa.Array:
    """A typed column; rows where `null` is True are null."""
    # pyarrow takes numpy numbers directly; strings and bools go through Python lists.
    data = values.tolist() if dtype in (pa.string(), pa.bool_()) else values
    return pa.array(data, dtype, mask=null)


def _write(table: pa.Table, path: Path) -> int:
    pq.write_table(table, path)
    return int(table.num_rows)


def demand_curve(hour_of_day: np.ndarray) -> np.ndarray:
    """Relative demand over a day: a morning and an evening peak, quiet nights."""
    h = hour_of_day.astype(np.float64)
    morning = np.exp(-((h - 8.5) ** 2) / (2 * 1.5**2))
    evening = np.exp(-((h - 18.5) ** 2) / (2 * 2.0**2))
    return 0.3 + 0.9 * morning + 1.1 * evening


# --- the simulated world ---------------------------------------------------------------


@dataclass
class World:
    """Per-entity traits that every file is derived from."""

    hours: int
    driver_ids: np.ndarray
    driver_city: np.ndarray
    acceptance: np.ndarray  # each driver's typical acceptance rate
    on_shift: np.ndarray  # bool [driver, hour]: online during hour k = [k, k + 1)
    customer_ids: np.ndarray
    customer_signup_us: np.ndarray  # sign-up instant; before ANCHOR for most
    cancel_rate: np.ndarray  # each customer's typical cancellation rate
    zone_city: np.ndarray
    zone_ids: np.ndarray
    zone_weight: np.ndarray  # share of a city's demand
    raining: np.ndarray  # bool [city index, hour]


def _world(rng: np.random.Generator, drivers: int, customers: int, days: int) -> World:
    hours = days * 24
    cities = np.array(list(CITIES))
    city_share = np.array(list(CITIES.values()), dtype=np.float64)
    city_share /= city_share.sum()

    # Drivers: a home city, a habitual shift start, one day off in seven.
    driver_city = rng.choice(cities, size=drivers, p=city_share)
    shift_start = rng.choice([5, 6, 7, 14, 15, 16, 20], size=drivers)
    shift_len = rng.integers(6, 11, size=drivers)
    on_shift = np.zeros((drivers, hours), dtype=bool)
    for d in range(drivers):
        for day in range(days):
            if rng.random() < 1 / 7:
                continue
            start = day * 24 + shift_start[d] + rng.integers(-1, 2)
            on_shift[d, max(start, 0) : min(start + shift_len[d], hours)] = True

    # Customers: most signed up before the data starts; some join during it.
    signup = ANCHOR_US - rng.integers(1, 365, size=customers) * DAY_US
    new = rng.random(customers) < 0.12
    signup[new] = ANCHOR_US + rng.integers(0, hours * HOUR_US, size=int(new.sum()))

    zone_city = np.array([c for c, n in CITIES.items() for _ in range(n)])
    zone_ids = np.array([z for n in CITIES.values() for z in range(1, n + 1)], dtype=np.int64)
    zone_weight = rng.lognormal(0.0, 0.5, size=len(zone_ids))
    for city in CITIES:
        in_city = zone_city == city
        zone_weight[in_city] /= zone_weight[in_city].sum()

    # Rain comes in spells: each hour keeps the previous hour's weather with p = 0.85.
    raining = np.zeros((len(CITIES), hours), dtype=bool)
    for c in range(len(CITIES)):
        state = rng.random() < 0.2
        for k in range(hours):
            if rng.random() > 0.85:
                state = rng.random() < 0.3
            raining[c, k] = state
    # The storm of the last 12 hours, after the draws above: the weather before stays.
    raining[:, max(hours - 12, 0) :] = True

    return World(
        hours=hours,
        driver_ids=np.arange(1001, 1001 + drivers, dtype=np.int64),
        driver_city=driver_city,
        acceptance=rng.beta(12, 3, size=drivers),
        on_shift=on_shift,
        customer_ids=np.arange(50_001, 50_001 + customers, dtype=np.int64),
        customer_signup_us=signup,
        cancel_rate=rng.beta(1.5, 18, size=customers),
        zone_city=zone_city,
        zone_ids=zone_ids,
        zone_weight=zone_weight,
        raining=raining,
    )


# --- one function per file -------------------------------------------------------------


def driver_hourly_stats(rng: np.random.Generator, w: World) -> pa.Table:
    n, hours = w.on_shift.shape
    d_idx, k = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(hours), indexing="ij"))
    working = w.on_shift[d_idx, k]
    demand = demand_curve(k % 24)
    trips = np.where(working, rng.poisson(1.4 * demand), 0).astype(np.int32)
    online = np.where(working, rng.integers(40, 61, size=k.size), 0).astype(np.int32)
    earnings = np.round(trips * rng.normal(13.0, 3.0, size=k.size).clip(5.0), 2)
    # Payments settle late: about 2% of hours have no earnings figure yet.
    earnings_null = rng.random(k.size) < 0.02

    # Rates over the trailing 24 hours: null when the driver had no offers in that window
    # (hours before the data starts count as worked, so the first day has rates).
    padded = np.concatenate([np.ones((n, 24), dtype=np.int64), w.on_shift], axis=1)
    cumulative = padded.cumsum(axis=1)
    trailing = (cumulative[:, 24:] - cumulative[:, :-24])[d_idx, k]  # hours k-23 .. k
    acceptance = (w.acceptance[d_idx] + rng.normal(0, 0.03, size=k.size)).clip(0, 1)
    conv = (acceptance * rng.beta(18, 2, size=k.size)).clip(0, 1)
    no_offers = trailing == 0

    # Online at the end of the hour = working during the next one.
    next_hour = np.concatenate([w.on_shift[:, 1:], w.on_shift[:, -1:]], axis=1)[d_idx, k]

    # Hour k is summarised at its end; the pipeline writes the row a few minutes later.
    event = ANCHOR_US + (k + 1) * HOUR_US
    created = event + rng.integers(2, 8, size=k.size) * MINUTE_US

    # About 3% of hourly runs never happened: those rows are missing.
    keep = rng.random(k.size) >= 0.03
    rows = np.flatnonzero(keep)
    # About 1.5% of working hours are re-emitted two hours later with corrected numbers:
    # one more trip was found. The later `created` makes the correction win.
    fix = rows[working[rows] & (rng.random(rows.size) < 0.015)]
    order = np.concatenate([rows, fix])
    is_fix = np.r_[np.zeros(rows.size, bool), np.ones(fix.size, bool)]
    trips_out = trips[order] + is_fix.astype(np.int32)
    earnings_out = earnings[order] + np.where(is_fix, 14.5, 0.0)
    created_out = np.where(is_fix, created[order] + 2 * HOUR_US + 15 * MINUTE_US, created[order])

    return pa.table(
        {
            "driver_id": pa.array(w.driver_ids[d_idx[order]], pa.int64()),
            "event_timestamp": _timestamps(event[order]),
            "created": _timestamps(created_out),
            "conv_rate": _column(conv[order].astype(np.float32), pa.float32(), no_offers[order]),
            "acceptance_rate": _column(
                acceptance[order].astype(np.float32), pa.float32(), no_offers[order]
            ),
            "trips_last_hour": pa.array(trips_out, pa.int32()),
            "online_minutes_last_hour": pa.array(online[order], pa.int32()),
            "earnings_last_hour": _column(earnings_out, pa.float64(), earnings_null[order]),
            "is_on_shift": _column(next_hour[order], pa.bool_()),
        }
    )


def driver_profile(rng: np.random.Generator, w: World, days: int) -> pa.Table:
    n = len(w.driver_ids)
    vehicle = rng.choice(VEHICLES, size=n, p=[0.55, 0.2, 0.1, 0.15])
    seats = np.array([SEATS[v] for v in vehicle], dtype=np.int32)
    languages: list[list[str] | None] = []
    for city in w.driver_city:
        spoken = [LANGUAGE[city]]
        if rng.random() < 0.6:
            spoken.append("en")
        if rng.random() < 0.1:
            spoken.append("fr")
        # A few drivers never filled in the languages field.
        languages.append(None if rng.random() < 0.04 else spoken)
    # About one driver in ten is new: too few rated trips for a rating.
    lifetime = np.where(
        rng.random(n) < 0.1, rng.integers(0, 20, size=n), rng.lognormal(6.5, 1.0, size=n)
    ).astype(np.int64)
    rating = rng.normal(4.78, 0.12, size=n).clip(3.5, 5.0)

    tables = []
    for day in range(days):
        tables.append(
            pa.table(
                {
                    "driver_id": pa.array(w.driver_ids, pa.int64()),
                    "event_timestamp": _timestamps(np.full(n, ANCHOR_US + day * DAY_US)),
                    "vehicle_type": _column(vehicle, pa.string()),
                    "seats": pa.array(seats, pa.int32()),
                    "languages": pa.array(languages, pa.list_(pa.string())),
                    "lifetime_trips": pa.array(lifetime, pa.int64()),
                    "avg_rating": _column(np.round(rating, 3), pa.float64(), lifetime < 20),
                }
            )
        )
        # The next snapshot: a day of trips later, ratings drift a little.
        worked_hours = w.on_shift[:, day * 24 : (day + 1) * 24].sum(axis=1)
        lifetime = lifetime + rng.poisson(1.4 * worked_hours)
        rating = (rating + rng.normal(0, 0.01, size=n)).clip(3.5, 5.0)
    return pa.concat_tables(tables)


def customer_daily_profile(rng: np.random.Generator, w: World, days: int) -> pa.Table:
    n = len(w.customer_ids)
    habit = rng.gamma(2.0, 4.0, size=n)  # trips per 30 days
    avg_km = rng.lognormal(1.6, 0.4, size=n)
    spend = np.where(w.customer_signup_us < ANCHOR_US, rng.gamma(2.0, 300.0, size=n), 0.0)
    premium = rng.random(n) < 0.12
    payment = rng.choice(PAYMENTS, size=n, p=[0.6, 0.3, 0.1])
    no_payment = rng.random(n) < 0.1

    tables = []
    for day in range(days):
        at = ANCHOR_US + day * DAY_US
        # The nightly job only knows customers who had signed up by midnight.
        known = w.customer_signup_us <= at
        trips_30d = np.where(w.customer_signup_us < ANCHOR_US, rng.poisson(habit), 0)
        tier = TIERS[np.searchsorted([3, 10, 20], trips_30d, side="right")]
        cancel = (w.cancel_rate + rng.normal(0, 0.01, size=n)).clip(0, 1)
        tables.append(
            pa.table(
                {
                    "customer_id": pa.array(w.customer_ids[known], pa.int64()),
                    "event_timestamp": _timestamps(np.full(int(known.sum()), at)),
                    "trips_last_30d": pa.array(trips_30d[known].astype(np.int32), pa.int32()),
                    "cancel_rate_30d": pa.array(cancel[known].astype(np.float32), pa.float32()),
                    "avg_trip_km": pa.array(np.round(avg_km[known], 2), pa.float64()),
                    "lifetime_spend": pa.array(np.round(spend[known], 2), pa.float64()),
                    "loyalty_tier": _column(tier[known], pa.string()),
                    "is_premium": _column(premium[known], pa.bool_()),
                    "preferred_payment": _column(payment[known], pa.string(), no_payment[known]),
                }
            )
        )
        spend = spend + rng.gamma(1.0, 15.0, size=n) * (rng.random(n) < habit / 30)
    return pa.concat_tables(tables)


@dataclass
class ZoneState:
    """The simulated marketplace, [zone, quarter hour], also used to label the trips."""

    open_requests: np.ndarray
    available: np.ndarray
    surge: np.ndarray
    wait: np.ndarray


def zone_state(rng: np.random.Generator, w: World) -> ZoneState:
    quarters = w.hours * 4
    q = np.arange(quarters)
    city_index = {c: i for i, c in enumerate(CITIES)}
    rain = w.raining[[city_index[c] for c in w.zone_city]][:, q // 4]  # [zone, quarter]
    # Expected requests per quarter: city size x zone share x time of day x rain.
    base = 6.0 * w.zone_weight[:, None] * np.array([CITIES[c] for c in w.zone_city])[:, None]
    curve = demand_curve((q // 4) % 24)[None, :]
    requests = rng.poisson(base * curve * np.where(rain, 1.5, 1.0))
    # Supply follows demand only part of the way: peaks and rain make it scarce.
    available = rng.poisson(base * (0.5 + 0.5 * curve) * 1.1 + 0.5)
    pressure = (requests - available).clip(0) / np.maximum(available, 1)
    surge = np.round((1.0 + 0.4 * pressure).clip(1.0, 3.0), 1)
    wait = np.round(rng.gamma(4.0, (2.0 + 3.0 * pressure) / 4.0), 1)
    return ZoneState(requests, available, surge, wait)


def zone_demand(rng: np.random.Generator, w: World, s: ZoneState) -> pa.Table:
    zones, quarters = s.open_requests.shape
    z, q = (a.ravel() for a in np.meshgrid(np.arange(zones), np.arange(quarters), indexing="ij"))
    city_index = {c: i for i, c in enumerate(CITIES)}
    rain = w.raining[[city_index[c] for c in w.zone_city[z]], q // 4]
    keep = rng.random(z.size) >= 0.01  # a few snapshots were lost
    z, q, rain = z[keep], q[keep], rain[keep]
    requests = s.open_requests[z, q]
    return pa.table(
        {
            "city": _column(w.zone_city[z], pa.string()),
            "zone_id": pa.array(w.zone_ids[z], pa.int64()),
            # Quarter q is summarised at its end.
            "event_timestamp": _timestamps(ANCHOR_US + (q + 1) * QUARTER_US),
            "open_requests": pa.array(requests.astype(np.int32), pa.int32()),
            "available_drivers": pa.array(s.available[z, q].astype(np.int32), pa.int32()),
            "surge_multiplier": pa.array(s.surge[z, q].astype(np.float32), pa.float32()),
            # Nobody waited in a window without requests: no mean wait.
            "avg_wait_minutes": _column(s.wait[z, q], pa.float64(), requests == 0),
            "is_raining": _column(rain, pa.bool_()),
        }
    )


def trips(rng: np.random.Generator, w: World, s: ZoneState, count: int) -> pa.Table:
    """Trip requests, each accepted by a driver who was on shift, labelled `completed`."""
    # Who drove when: on-shift (driver, hour) pairs, weighted by the demand at that hour.
    d_on, k_on = np.nonzero(w.on_shift)
    weight = demand_curve(k_on % 24)
    pick = rng.choice(d_on.size, size=count, p=weight / weight.sum())
    d_idx, hour = d_on[pick], k_on[pick]
    at = ANCHOR_US + hour * HOUR_US + rng.integers(0, HOUR_US, size=count)
    city = w.driver_city[d_idx]

    # The pickup zone, by demand share within the driver's city.
    z_idx = np.empty(count, dtype=np.int64)
    for c in CITIES:
        rows = np.flatnonzero(city == c)
        zones = np.flatnonzero(w.zone_city == c)
        z_idx[rows] = rng.choice(zones, size=rows.size, p=w.zone_weight[zones])

    # A customer who had signed up by then (redraw the few that had not).
    c_idx = rng.integers(0, len(w.customer_ids), size=count)
    early = w.customer_signup_us[c_idx] > at
    while early.any():
        c_idx[early] = rng.integers(0, len(w.customer_ids), size=int(early.sum()))
        early = w.customer_signup_us[c_idx] > at

    # Completion odds: reliable drivers, reliable customers and calm zones complete.
    quarter = (at - ANCHOR_US) // QUARTER_US
    surge = s.surge[z_idx, quarter]
    logit = (
        1.6
        + 4.0 * (w.acceptance[d_idx] - 0.8)
        - 10.0 * (w.cancel_rate[c_idx] - 0.08)
        - 1.2 * (surge - 1.0)
    )
    completed = rng.random(count) < 1 / (1 + np.exp(-logit))

    driver_id = w.driver_ids[d_idx]
    customer_id = w.customer_ids[c_idx]
    zone_id = w.zone_ids[z_idx]
    city_out = w.zone_city[z_idx]

    # The awkward rows every real entity dataframe has:
    n_odd = max(count // 80, 1)
    odd = rng.choice(count, size=4 * n_odd, replace=False).reshape(4, n_odd)
    # backfilled trips from before the feature pipelines started: every feature is null,
    at[odd[0]] = ANCHOR_US - rng.integers(1, 12 * HOUR_US, size=n_odd)
    # drivers onboarded after the exports were taken: driver features are null,
    driver_id[odd[1]] = 9001 + np.arange(n_odd)
    # guest checkouts with no customer account: customer features are null,
    customer_id[odd[2]] = 99_001 + np.arange(n_odd)
    # and pickups outside the mapped zones: zone features are null.
    zone_id[odd[3]] = UNKNOWN_ZONE

    # The route length the rider's app quoted (a request value for on-demand features).
    distance_km = np.round(rng.gamma(2.0, 3.5, size=count), 1)

    order = np.argsort(at, kind="stable")
    return pa.table(
        {
            "trip_id": pa.array(np.arange(1, count + 1, dtype=np.int64), pa.int64()),
            "driver_id": pa.array(driver_id[order], pa.int64()),
            "customer_id": pa.array(customer_id[order], pa.int64()),
            "city": _column(city_out[order], pa.string()),
            "zone_id": pa.array(zone_id[order], pa.int64()),
            "event_timestamp": _timestamps(at[order]),
            "distance_km": pa.array(distance_km[order], pa.float64()),
            "completed": _column(completed[order], pa.bool_()),
        }
    )


def completed_trips(rng: np.random.Generator, trips_table: pa.Table, end_us: int) -> pa.Table:
    """One event per completed trip of a known driver, at its drop-off (the request
    time plus the ride), with the fare charged. About 3% of fares are not settled yet
    (null), and about 1% of events are delivered twice (the same row again: an
    aggregation counts it once). Drop-offs after `end_us` have not happened yet."""
    done = trips_table.filter(
        pc.and_(
            pc.equal(trips_table["completed"], True),
            pc.less(trips_table["driver_id"], 9001),
        )
    )
    at = pc.cast(done["event_timestamp"], pa.int64()).to_numpy()
    distance = done["distance_km"].to_numpy()
    ride_us = (distance / 28.0 * HOUR_US).astype(np.int64)
    drop_off = at + ride_us + rng.integers(3, 11, size=at.size) * MINUTE_US
    fare = np.round((2.5 + 1.2 * distance) * rng.uniform(0.9, 1.4, size=at.size), 2)
    unsettled = rng.random(at.size) < 0.03
    keep = drop_off <= end_us
    twice = np.flatnonzero(keep & (rng.random(at.size) < 0.01))
    rows = np.concatenate([np.flatnonzero(keep), twice])
    rows = rows[np.argsort(drop_off[rows], kind="stable")]
    return pa.table(
        {
            "driver_id": done["driver_id"].take(pa.array(rows)),
            "trip_id": done["trip_id"].take(pa.array(rows)),
            "event_timestamp": _timestamps(drop_off[rows]),
            "fare": _column(fare[rows], pa.float64(), unsettled[rows]),
            "distance_km": pa.array(distance[rows], pa.float64()),
        }
    )


# --- entry point -----------------------------------------------------------------------


def generate(
    repo_path: Path,
    *,
    drivers: int = 50,
    customers: int = 200,
    days: int = 3,
    trip_count: int = 2000,
    seed: int = SEED,
    anchor: datetime | None = None,
) -> dict[str, int]:
    """Write the repo's data files under `repo_path/data`; returns rows per file.

    `anchor` moves every timestamp so the data starts there instead of at ANCHOR (the
    values stay the same): the demo anchors the data to end when it runs, so the
    online store serves fresh values rather than ones past their ttl."""
    if min(drivers, customers, days, trip_count) < 1:
        raise ValueError("drivers, customers, days and trip_count must be positive")
    data = repo_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    # One independent stream per file, so resizing one file leaves the others unchanged.
    world_rng, hourly, profile, customer, zone, trip, completed = (
        np.random.default_rng([seed, i]) for i in range(7)
    )
    world = _world(world_rng, drivers, customers, days)
    state = zone_state(zone, world)
    tables = {
        "driver_hourly_stats": driver_hourly_stats(hourly, world),
        "driver_profile": driver_profile(profile, world, days),
        "customer_daily_profile": customer_daily_profile(customer, world, days),
        "zone_demand": zone_demand(zone, world, state),
        "trips": trips(trip, world, state, trip_count),
    }
    tables["completed_trips"] = completed_trips(
        completed, tables["trips"], ANCHOR_US + world.hours * HOUR_US
    )
    if anchor is not None:
        shift_us = int((anchor - ANCHOR).total_seconds()) * 1_000_000
        tables = {name: _shift(table, shift_us) for name, table in tables.items()}
    return {
        f"data/{name}.parquet": _write(table, data / f"{name}.parquet")
        for name, table in tables.items()
    }


def _shift(table: pa.Table, shift_us: int) -> pa.Table:
    """Every timestamp column moved by `shift_us` microseconds."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            micros = pc.cast(table.column(i), pa.int64())
            moved = pc.cast(pc.add(micros, shift_us), field.type)
            table = table.set_column(i, field, moved)
    return table


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--drivers", type=int, default=50)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--trips", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=SEED)
    return parser.parse_args()


if __name__ == "__main__":
    args = _parse_args()
    counts = generate(
        args.repo,
        drivers=args.drivers,
        customers=args.customers,
        days=args.days,
        trip_count=args.trips,
        seed=args.seed,
    )
    for file, rows in counts.items():
        print(f"{rows:>8,} rows  {args.repo / file}")
