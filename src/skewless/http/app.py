"""The ASGI app: POST /get-online-features and GET /health over the serving core.

The endpoints convert (convert.py), delegate to OnlineService (the same one the gRPC
server uses, on the same event loop) and answer; errors.py's wrapper maps what they
raise to a status. The request's size is checked against serving.max_request_bytes
before its body is read (Content-Length) and while it is read (a chunked body), so an
oversized body is never held whole; its bytes count against
serving.max_inflight_request_bytes while the call runs, in one count with the gRPC
calls' (OnlineService.inflight).

An HTTP call has no deadline of its own (gRPC's has no HTTP counterpart): a lookup is
bounded by the service's default of 5 s, and each read of Redis by its socket timeout
(1 s), so an unresponsive Redis is a 503 within about a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from skewless.http import convert
from skewless.http.errors import with_status
from skewless.serving.limits import check_request_bytes
from skewless.serving.service import OnlineService

LOOKUP_PATH: Final = "/get-online-features"
LOOKUP_METHOD: Final = f"POST {LOOKUP_PATH}"  # as the metrics and the log name it
HEALTH_PATH: Final = "/health"
JSON: Final = "application/json"


class OnlineHttp:
    """The endpoints over one backend. `serving()` says whether the server is SERVING
    (the state the gRPC health service reports)."""

    def __init__(
        self,
        backend: OnlineService,
        serving: Callable[[], bool],
        record: Callable[[int, float], None] | None = None,
    ) -> None:
        self._backend = backend
        self._serving = serving
        self._record = record  # the server's metrics: each lookup's status and seconds

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    LOOKUP_PATH,
                    with_status(LOOKUP_METHOD, self.get_online_features, self._record),
                    methods=["POST"],
                ),
                Route(HEALTH_PATH, self.health, methods=["GET"]),
            ]
        )

    async def _body(self, request: Request) -> bytes:
        """The request's body, refused (RequestTooLargeError) as soon as it is known to
        be over serving.max_request_bytes."""
        limits = self._backend.limits
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            check_request_bytes(int(declared), limits)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            check_request_bytes(size, limits)
            chunks.append(chunk)
        return b"".join(chunks)

    async def get_online_features(self, request: Request) -> Response:
        body = await self._body(request)
        with self._backend.inflight.hold(len(body)):
            query = convert.parse_request(body)
            lookup = await self._backend.lookup(
                query.features,
                query.rows,
                query.entity_columns,
                full_feature_names=query.full_feature_names,
                request_columns=query.request_columns,
            )
            payload = await self._backend.run(
                lookup.size, lookup.answer_by, convert.encode_lookup, lookup, query.entities
            )
        return Response(payload, media_type=JSON)

    async def health(self, request: Request) -> Response:
        serving = self._serving()
        return JSONResponse(
            {"status": "SERVING" if serving else "NOT_SERVING"}, 200 if serving else 503
        )
