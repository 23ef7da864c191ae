"""Feature services: the exact feature lists that models are trained and served with."""

from customer_features import customer_daily_profile
from driver_features import driver_hourly_stats, driver_profile
from zone_features import zone_demand

from skewless import FeatureService

# Will the trip be completed once a driver accepts it?
trip_completion_model_v1 = FeatureService(
    "trip_completion_model_v1",
    features=[
        driver_hourly_stats[["conv_rate", "acceptance_rate", "trips_last_hour"]],
        driver_profile[["vehicle_type", "avg_rating"]],
        customer_daily_profile[["trips_last_30d", "cancel_rate_30d", "loyalty_tier"]],
        zone_demand[["surge_multiplier", "open_requests", "available_drivers"]],
    ],
    description="Features of the trip completion classifier, version 1.",
    tags={"model": "trip_completion", "stage": "production"},
    owner="ml-platform@rides.example",
)

# Surge pricing reads the whole zone view plus whether the rider is premium.
surge_pricing_model_v1 = FeatureService(
    "surge_pricing_model_v1",
    features=[zone_demand, customer_daily_profile[["is_premium"]]],
    description="Features of the surge pricing regressor, version 1.",
    tags={"model": "surge_pricing", "stage": "staging"},
    owner="marketplace@rides.example",
)
