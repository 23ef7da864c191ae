"""Zone features: supply and demand per pickup zone, every 15 minutes."""

from datetime import timedelta

from entities import pickup_zone

from skewless import Bool, FeatureView, Field, FileSource, Float32, Float64, Int32, Int64, String

zone_demand = FeatureView(
    "zone_demand",
    entities=[pickup_zone],
    schema=[
        Field("city", String),
        Field("zone_id", Int64),
        Field("open_requests", Int32, description="Unassigned trip requests in the zone."),
        Field("available_drivers", Int32, description="Idle drivers in the zone."),
        Field("surge_multiplier", Float32, description="Price multiplier shown to riders."),
        Field(
            "avg_wait_minutes",
            Float64,
            description="Mean pickup wait over the window; null when nobody waited.",
        ),
        Field("is_raining", Bool, description="Rain reported by the weather feed."),
    ],
    source=FileSource(
        "data/zone_demand.parquet",
        timestamp_field="event_timestamp",
        description="15-minute snapshots of the marketplace state.",
    ),
    # Demand moves fast: a snapshot older than an hour says little about now.
    ttl=timedelta(hours=1),
    description="The marketplace balance in a pickup zone.",
    tags={"team": "marketplace", "cadence": "15min"},
    owner="marketplace@rides.example",
)
