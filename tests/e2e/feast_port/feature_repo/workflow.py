# The SDK calls of a Feast user's workflow: a training set, materialization, online
# lookups by feature list and by feature service.

from datetime import datetime

import pandas as pd
from feast import FeatureStore


def fetch_historical_features_entity_df(store: FeatureStore, entity_df: pd.DataFrame):
    return store.get_historical_features(
        entity_df=entity_df,
        features=[
            "driver_hourly_stats:conv_rate",
            "driver_hourly_stats:acc_rate",
            "driver_hourly_stats:avg_daily_trips",
        ],
    ).to_df()


def load_online_store(store: FeatureStore) -> None:
    store.materialize_incremental(end_date=datetime.now())


def fetch_online_features(store: FeatureStore, source: str = ""):
    entity_rows = [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 1005}]
    if source == "feature_service":
        features_to_fetch = store.get_feature_service("driver_activity_v2")
    else:
        features_to_fetch = ["driver_hourly_stats:acc_rate", "driver_hourly_stats:conv_rate"]
    return store.get_online_features(
        features=features_to_fetch,
        entity_rows=entity_rows,
    ).to_dict()


if __name__ == "__main__":
    print(fetch_online_features(FeatureStore(repo_path=".")))
