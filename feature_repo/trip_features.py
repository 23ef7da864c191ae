"""Trip features computed at request time: from what the rider's app sends with the
request (the quoted route length) and from features the driver and zone views serve.

Offline, `distance_km` is a column of the entity dataframe (trips.parquet has it);
online, it comes with the lookup (`request_data=` or the gRPC request's
`request_columns`). The same expressions run on Spark and in the online server.
"""

from driver_features import driver_hourly_stats
from zone_features import zone_demand

from skewless import Bool, Field, Float64, OnDemandFeatureView, RequestSource
from skewless.expr import coalesce, col, round

trip_request = RequestSource(
    "trip_request",
    schema=[Field("distance_km", Float64, description="Route length quoted to the rider.")],
    description="Values the rider's app sends with each request.",
)

trip_context = OnDemandFeatureView(
    "trip_context",
    sources=[
        driver_hourly_stats[["trips_last_hour"]],
        zone_demand[["surge_multiplier"]],
        trip_request,
    ],
    schema=[
        Field(
            "expected_fare",
            Float64,
            # base fare plus a per-km rate, times the zone's surge (none known: 1.0)
            expr=round(
                coalesce(col("surge_multiplier"), 1.0) * (2.5 + 1.2 * col("distance_km")), 2
            ),
            description="Fare the rider is likely to be quoted, EUR.",
        ),
        Field(
            "long_trip_for_busy_driver",
            Bool,
            expr=(col("distance_km") >= 15) & (col("trips_last_hour") >= 2),
            description="A long trip offered to a driver already busy this hour.",
        ),
    ],
    description="Request-time context of a trip offer.",
    owner="marketplace@rides.example",
)
