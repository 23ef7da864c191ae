"""A driver's recent trips: counts over the last hour, day and week and the mean fare
over a week, aggregated from one event per completed trip.

Each value is exact at any time: in a training set, at each row's timestamp; online, at
the moment of the request, so a trip stops counting toward `trips_1h` an hour after its
drop-off even if nothing was materialized since (docs/aggregations.md).
"""

from datetime import timedelta

from entities import driver

from skewless import Aggregation, FeatureView, Field, FileSource, Float64, Int64

completed_trips = FileSource(
    "data/completed_trips.parquet",
    timestamp_field="event_timestamp",
    description="One event per completed trip, at its drop-off.",
)

driver_trip_stats = FeatureView(
    "driver_trip_stats",
    entities=[driver],
    schema=[
        Field("trip_id", Int64),
        Field("fare", Float64, description="Fare charged, EUR; null until settled."),
    ],
    source=completed_trips,
    aggregations=[
        Aggregation(
            column="trip_id",
            function="count",
            time_window=timedelta(hours=1),
            name="trips_1h",
            description="Trips completed in the last hour.",
        ),
        Aggregation(
            column="trip_id",
            function="count",
            time_window=timedelta(days=1),
            name="trips_1d",
            description="Trips completed in the last 24 hours.",
        ),
        Aggregation(
            column="trip_id",
            function="count",
            time_window=timedelta(days=7),
            name="trips_7d",
            description="Trips completed in the last 7 days.",
        ),
        Aggregation(
            column="fare",
            function="mean",
            time_window=timedelta(days=7),
            name="mean_fare_7d",
            description="Mean settled fare, last 7 days.",
        ),
    ],
    description="Windowed aggregates of each driver's completed trips.",
    owner="marketplace@rides.example",
)
