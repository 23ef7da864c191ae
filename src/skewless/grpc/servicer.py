"""The OnlineServing servicer: convert, delegate to the backend, convert back.

No try/except here: errors reach the interceptor in errors.py, which maps them to status
codes in one table.
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from skewless.grpc import convert
from skewless.grpc.backend import OnlineBackend


class OnlineServingServicer(convert.OnlineServingServicerBase):
    def __init__(self, backend: OnlineBackend) -> None:
        self._backend = backend

    async def GetOnlineFeatures(  # noqa: N802 - the RPC's name, as generated
        self,
        request: convert.GetOnlineFeaturesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> convert.GetOnlineFeaturesResponse:
        query = convert.query_from_proto(request)
        answer = await self._backend.get_online_features(
            query, time_remaining_s=context.time_remaining()
        )
        return convert.answer_to_proto(answer)
