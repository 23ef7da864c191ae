"""Driver features: hourly activity from the dispatch log, and a daily profile snapshot."""

from datetime import timedelta

from entities import driver

from skewless import (
    Array,
    Bool,
    FeatureView,
    Field,
    FileSource,
    Float32,
    Float64,
    Int32,
    Int64,
    Schedule,
    String,
)
from skewless.expr import col, hour

# One row per driver and hour. `event_timestamp` is the end of the hour the row
# summarises, so a row is only visible to trips that start after that hour is over.
# The dispatch pipeline sometimes re-emits an hour with corrected numbers: same
# `event_timestamp`, later `created`; the row created last wins.
driver_hourly_stats = FeatureView(
    "driver_hourly_stats",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("conv_rate", Float32, description="Offers that became trips, trailing 24 hours."),
        Field("acceptance_rate", Float32, description="Offers accepted, trailing 24 hours."),
        Field("trips_last_hour", Int32, description="Trips completed during the hour."),
        Field("online_minutes_last_hour", Int32, description="Minutes online during the hour."),
        Field(
            "earnings_last_hour",
            Float64,
            description="Fares earned during the hour, EUR; null while payments are pending.",
        ),
        Field("is_on_shift", Bool, description="Online at the end of the hour."),
        # Derived features: computed by skewless from the columns above, then stored and
        # served like the others (docs/expressions.md).
        Field(
            "earnings_per_online_hour",
            Float64,
            expr=col("earnings_last_hour") / (col("online_minutes_last_hour") / 60),
            description="Earnings per hour online, EUR; null for an hour not online (a "
            "division by zero) or with payments pending.",
        ),
        Field(
            "local_hour",
            Int64,
            expr=hour(col("event_timestamp"), tz="Europe/Lisbon"),
            description="Hour of the day in Lisbon time at the end of the summarised hour.",
        ),
    ],
    source=FileSource(
        "data/driver_hourly_stats.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
        description="Hourly aggregates of the dispatch log.",
    ),
    # Hourly data; two hours lets one late or missing hour fall back to the one before.
    ttl=timedelta(hours=2),
    # Scheduled by the project's default (feature_store.yaml: hourly); `skewless status`
    # flags it stale once its values are more than 2 hours behind.
    expected_freshness=timedelta(hours=2),
    description="What each driver did over the last hour (and day).",
    tags={"team": "driver-ops", "cadence": "hourly"},
    owner="driver-ops@rides.example",
)

# One snapshot per driver and day, taken at midnight UTC.
driver_profile = FeatureView(
    "driver_profile",
    entities=[driver],
    schema=[
        Field("driver_id", Int64),
        Field("vehicle_type", String, description="sedan, suv, van or electric."),
        Field("seats", Int32, description="Passenger seats in the vehicle."),
        Field("languages", Array(String), description="Languages the driver speaks."),
        Field("lifetime_trips", Int64, description="Trips completed since sign-up."),
        Field(
            "avg_rating",
            Float64,
            description="Mean rider rating, 1-5; null until the driver has 20 rated trips.",
        ),
    ],
    source=FileSource(
        "data/driver_profile.parquet",
        timestamp_field="event_timestamp",
        description="Daily export of the driver accounts database.",
    ),
    ttl=timedelta(days=7),
    # The export lands after 02:00 Lisbon time: materialize at 03:00 there, daily.
    materialization=Schedule("0 3 * * *", timezone="Europe/Lisbon", catch_up=timedelta(days=3)),
    description="Slow-moving facts about a driver and their vehicle.",
    tags={"team": "driver-ops", "cadence": "daily"},
    owner="driver-ops@rides.example",
)
