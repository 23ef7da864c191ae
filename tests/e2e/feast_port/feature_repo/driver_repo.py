# Driver statistics, defined in Feast's style: keyword arguments throughout.

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float32, Int64

# The entity: the key features are looked up by.
driver = Entity(name="driver", join_keys=["driver_id"], description="A driver")

# Hourly statistics per driver, one Parquet file written by pandas.
driver_stats_source = FileSource(
    name="driver_hourly_stats_source",
    path="data/driver_stats.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
)

driver_stats_fv = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float32),
        Field(name="avg_daily_trips", dtype=Int64, description="Average daily trips"),
    ],
    online=True,
    source=driver_stats_source,
    tags={"team": "driver_performance"},
)

# A model's features: part of a view, then the whole view.
driver_activity_v1 = FeatureService(
    name="driver_activity_v1",
    features=[driver_stats_fv[["conv_rate"]]],
)
driver_activity_v2 = FeatureService(name="driver_activity_v2", features=[driver_stats_fv])
