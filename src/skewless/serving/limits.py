"""The online server's limits on one call (feature_store.yaml's `serving` section).

Each is checked as soon as the size it bounds is known and before the work it bounds:
the request's bytes before it is parsed, its entity rows (the entity columns' length)
before any value is read, its features (the references sent, or the feature service's
features) before its keys are built. In-process lookups (FeatureStore.get_online_features)
have no limits: the caller pays for its own work there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from skewless.config import ServingConfig
from skewless.errors import RequestTooLargeError, ServerOverloadedError


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


class InflightBytes:
    """The request bytes the server's calls hold at once. A parsed request takes about
    ten times its size until its answer is sent, so this bounds the server's memory
    whatever the number of concurrent callers. Used on the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Count `size` bytes while the block runs; ServerOverloadedError when they would
        pass the limit (a request alone within max_request_bytes always fits when
        nothing else is in flight)."""
        if self.held and self.held + size > self.limit:
            raise ServerOverloadedError(size, self.held, self.limit)
        self.held += size
        try:
            yield
        finally:
            self.held -= size
