"""Customer features: a daily profile computed from the last 30 days of trips."""

from datetime import timedelta

from entities import customer

from skewless import Bool, FeatureView, Field, FileSource, Float32, Float64, Int32, Int64, String

# One snapshot per customer and day, taken at midnight UTC. Customers who signed up
# during the day have no snapshot until the next midnight.
customer_daily_profile = FeatureView(
    "customer_daily_profile",
    entities=[customer],
    schema=[
        Field("customer_id", Int64),
        Field("trips_last_30d", Int32, description="Trips taken in the last 30 days."),
        Field("cancel_rate_30d", Float32, description="Requests the customer cancelled."),
        Field("avg_trip_km", Float64, description="Mean trip distance, km."),
        Field("lifetime_spend", Float64, description="Fares paid since sign-up, EUR."),
        Field("loyalty_tier", String, description="bronze, silver, gold or platinum."),
        Field("is_premium", Bool, description="Holds a premium subscription."),
        Field(
            "preferred_payment",
            String,
            description="card, wallet or cash; null if the customer never chose one.",
        ),
    ],
    source=FileSource(
        "data/customer_daily_profile.parquet",
        timestamp_field="event_timestamp",
        description="Nightly customer aggregates from the trips warehouse.",
    ),
    # Daily snapshots; two days tolerate one failed nightly run.
    ttl=timedelta(days=2),
    description="How much and how reliably a customer rides.",
    tags={"team": "growth", "cadence": "daily"},
    owner="growth@rides.example",
)
