"""The OnlineServing servicer: convert, delegate to the backend, convert back.

No try/except here: errors reach the status wrapper in errors.py, which maps them to
status codes in one table. The handler takes the request's bytes (server.py registers it
without a deserializer), so the size limit is checked before parsing and an undecodable
request is refused by the same wrapper (INVALID_ARGUMENT, counted) rather than by grpc.
The response goes out as encode_lookup()'s bytes (see convert.py), so the handler is
registered with convert.serialize_response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc.aio

from skewless.grpc import convert
from skewless.serving.limits import check_request_bytes
from skewless.serving.service import OnlineService
from skewless.types import DType


class OnlineServingServicer(convert.OnlineServingServicerBase):
    def __init__(self, backend: OnlineService) -> None:
        self._backend = backend

    async def GetOnlineFeatures(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        time_remaining_s = context.time_remaining()
        check_request_bytes(len(request), self._backend.limits)
        with self._backend.inflight.hold(len(request)):
            return await self._lookup(request, time_remaining_s)

    async def _lookup(self, request: bytes, time_remaining_s: float | None) -> bytes:
        msg = convert.request_from_bytes(request)

        def entity_columns(keys: Sequence[str]) -> dict[str, list[Any]]:
            return convert.entity_columns_from_proto(msg.entity_columns, keys)[0]

        def request_columns(fields: Mapping[str, DType]) -> dict[str, list[Any]]:
            # Feast's clients send request values among the entity columns
            columns = {**msg.entity_columns, **msg.request_columns}
            return convert.request_columns_from_proto(columns, fields)

        lookup = await self._backend.lookup(
            convert.features_from_proto(msg),
            convert.entity_row_count(msg.entity_columns)
            or convert.entity_row_count(msg.request_columns),
            entity_columns,
            full_feature_names=msg.full_feature_names,
            time_remaining_s=time_remaining_s,
            request_columns=request_columns,
        )
        return await self._backend.run(lookup.size, lookup.answer_by, convert.encode_lookup, lookup)
