"""OnlineClient: online features from a `skewless serve` server, as FeatureStore gives them.

`OnlineClient(target).get_online_features(...)` returns the same OnlineResponse type that
`FeatureStore.get_online_features` returns in-process, with the same values, statuses
and event timestamps for the same rows, so `.to_dict()` and `.to_pandas()` behave alike.
It takes the entity rows FeatureStore takes: rows may have different keys (a feature
service over views with different join keys) and keys no feature needs.
Failed calls raise grpc.RpcError; its code() says what went wrong and its details() are
the message FeatureStore's error has (INVALID_ARGUMENT for an unknown feature, or a row
without a join key or with a mistyped one; UNAVAILABLE when Redis is down: retry that
one). A row value no gRPC Value can carry (neither a number, str, bytes, bool, datetime
nor a list of them) raises EntityRowsError before any call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import grpc

from skewless.definitions import FeatureService
from skewless.grpc import convert
from skewless.serving.response import OnlineResponse
from skewless.serving.service import OnlineQuery


class OnlineClient:
    def __init__(self, target: str, *, timeout_s: float | None = 10.0) -> None:
        """`target` is "host:port". `timeout_s` is the default deadline of each call."""
        self.target = target
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(target)
        self._stub = convert.OnlineServingStub(self._channel)

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]],
        full_feature_names: bool = False,
        *,
        timeout_s: float | None = None,
    ) -> OnlineResponse:
        """The latest materialized values for each entity row (a dict of join keys).
        `features` is a list of "view:feature" refs, a FeatureService, or the name of
        an applied feature service."""
        selected: list[str] | str
        if isinstance(features, FeatureService):
            selected = features.refs
        elif isinstance(features, str) and ":" in features:
            selected = [features]
        else:
            selected = features if isinstance(features, str) else list(features)
        rows = [dict(r) for r in entity_rows]
        request = convert.query_to_proto(OnlineQuery(selected, rows, full_feature_names))
        reply = self._stub.GetOnlineFeatures(request, timeout=timeout_s or self.timeout_s)
        return convert.response_from_proto(reply, rows)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> OnlineClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
