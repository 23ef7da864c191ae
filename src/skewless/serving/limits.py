"""The online server's limits on one call (feature_store.yaml's `serving` section).

Each is checked as soon as the size it bounds is known and before the work it bounds:
the request's bytes before it is parsed, its entity rows (the entity columns' length)
before any value is read, its features (the references sent, or the feature service's
features) before its keys are built. In-process lookups (FeatureStore.get_online_features)
have no limits: the caller pays for its own work there.
"""

from __future__ import annotations

from skewless.config import ServingConfig
from skewless.errors import RequestTooLargeError


def check_request_bytes(size: int, limits: ServingConfig) -> None:
    if size > limits.max_request_bytes:
        raise RequestTooLargeError(
            size, "bytes", "serving.max_request_bytes", limits.max_request_bytes
        )


def check_entity_rows(rows: int, limits: ServingConfig) -> None:
    if rows > limits.max_entity_rows:
        raise RequestTooLargeError(
            rows, "entity rows", "serving.max_entity_rows", limits.max_entity_rows
        )


def check_features(rows: int, features: int, limits: ServingConfig) -> None:
    """`features` requested for `rows` entity rows (already within their limit)."""
    if features > limits.max_features:
        raise RequestTooLargeError(
            features, "features", "serving.max_features", limits.max_features
        )
    if rows * features > limits.max_response_values:
        raise RequestTooLargeError(
            rows * features,
            f"feature values ({rows} entity rows x {features} features)",
            "serving.max_response_values",
            limits.max_response_values,
        )
