"""The OnlineServing servicer: convert, delegate to the backend, convert back.

No try/except here: errors reach the status wrapper in errors.py, which maps them to
status codes in one table. The response goes out as encode_lookup()'s bytes (see
convert.py), so the handler is registered with convert.serialize_response.
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from skewless.grpc import convert
from skewless.serving.service import OnlineService


class OnlineServingServicer(convert.OnlineServingServicerBase):
    def __init__(self, backend: OnlineService) -> None:
        self._backend = backend

    async def GetOnlineFeatures(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self,
        request: convert.GetOnlineFeaturesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> bytes:
        columns, rows = convert.entity_columns_from_proto(request.entity_columns)
        lookup = await self._backend.lookup(
            convert.features_from_proto(request),
            columns,
            rows,
            full_feature_names=request.full_feature_names,
            time_remaining_s=context.time_remaining(),
        )
        return convert.encode_lookup(lookup)
