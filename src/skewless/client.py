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
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from skewless.definitions import FeatureService
from skewless.grpc import convert
from skewless.serving.response import OnlineResponse
from skewless.serving.service import OnlineQuery

# A response is as large as the server's limits allow (serving.max_response_values),
# which can exceed gRPC's default 4 MiB cap on a received message.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1)]


class OnlineClient:
    def __init__(
        self,
        target: str,
        *,
        timeout_s: float | None = 10.0,
        tls: bool = False,
        tls_ca_file: str | Path | None = None,
        tls_cert_file: str | Path | None = None,
        tls_key_file: str | Path | None = None,
    ) -> None:
        """`target` is "host:port". `timeout_s` is the default deadline of each call.

        TLS (a server with `serving.tls`): `tls=True` checks the server's certificate
        against the system's roots, `tls_ca_file` against that CA (PEM) instead; with
        mutual TLS, `tls_cert_file` and `tls_key_file` are this client's certificate
        chain and key. Any of them implies TLS."""
        self.target = target
        self.timeout_s = timeout_s
        if tls or tls_ca_file or tls_cert_file or tls_key_file:
            if (tls_cert_file is None) != (tls_key_file is None):
                raise ValueError("tls_cert_file and tls_key_file go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca_file),
                private_key=_read(tls_key_file),
                certificate_chain=_read(tls_cert_file),
            )
            self._channel = grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        self._stub = convert.OnlineServingStub(self._channel)

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]],
        full_feature_names: bool = False,
        *,
        timeout_s: float | None = None,
        request_data: Mapping[str, Sequence[Any]] | None = None,
    ) -> OnlineResponse:
        """The latest materialized values for each entity row (a dict of join keys).
        `features` is a list of "view:feature" refs, a FeatureService, or the name of
        an applied feature service. `request_data`: request field -> one value per
        entity row, for on-demand features."""
        selected: list[str] | str
        if isinstance(features, FeatureService):
            selected = features.refs
        elif isinstance(features, str) and ":" in features:
            selected = [features]
        else:
            selected = features if isinstance(features, str) else list(features)
        rows = [dict(r) for r in entity_rows]
        values = {k: list(v) for k, v in (request_data or {}).items()}
        request = convert.query_to_proto(
            OnlineQuery(selected, rows, full_feature_names, request_data=values)
        )
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


def _read(path: str | Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()
