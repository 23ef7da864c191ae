"""Domain errors -> HTTP statuses: the one table, applied by one wrapper.

Handlers contain no try/except: whatever an endpoint raises reaches the wrapper app.py
puts around it, which looks its type up here (first match wins) and answers with that
status and a JSON body naming the error and carrying its message, which names the
offending field, feature, view, service or join key:

    {"error": "FeatureViewNotFoundError", "message": "feature view 'nope' ..."}

Errors not in the table: a retryable SkewlessError is 503, any other 500. What the
operator should hear about (refusals over a limit, internal errors) is logged at most
once per LOG_INTERVAL_S for each kind, with the count of those held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from skewless.errors import (
    EntityRowsError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    InvalidFeatureRefError,
    MalformedRequestError,
    NothingAppliedError,
    OnlineStoreUnavailableError,
    RequestTooLargeError,
    ServerBusyError,
    ServerOverloadedError,
    SkewlessError,
    UndecodableRequestError,
)
from skewless.online.codec import CodecError
from skewless.serving.catalog import CatalogNotLoadedError
from skewless.serving.log_throttle import LOG_INTERVAL_S, LogThrottle

log = logging.getLogger(__name__)

BAD_REQUEST: Final = 400
CONFLICT: Final = 409
TOO_LARGE: Final = 413
TOO_MANY_REQUESTS: Final = 429
INTERNAL: Final = 500
UNAVAILABLE: Final = 503

# A status says whether to retry as the gRPC code of the same error says it
# (grpc/errors.py; tests/unit/test_transport_errors.py checks both tables): 503 is
# UNAVAILABLE (retry), 429 is RESOURCE_EXHAUSTED's overload (retry after a backoff), and
# 400, 409, 413 and 500 are not worth retrying unchanged.
STATUS_TABLE: Final[tuple[tuple[type[Exception], int], ...]] = (
    # the caller asked for something that does not exist or sent unusable rows
    (FeatureViewNotFoundError, BAD_REQUEST),
    (FeatureNotFoundError, BAD_REQUEST),
    (FeatureServiceNotFoundError, BAD_REQUEST),
    (InvalidFeatureRefError, BAD_REQUEST),
    (EntityRowsError, BAD_REQUEST),  # missing or mistyped join key, columns of unequal length
    (MalformedRequestError, BAD_REQUEST),  # not JSON, or a field of the wrong shape
    (UndecodableRequestError, BAD_REQUEST),
    # over one of the request limits (the `serving` section of feature_store.yaml): the
    # same request is refused again, so it is the caller's to split
    (RequestTooLargeError, TOO_LARGE),
    # the server as a whole holds too many request bytes in flight: retry after a
    # backoff (gRPC's RESOURCE_EXHAUSTED, which HTTP spells 429)
    (ServerOverloadedError, TOO_MANY_REQUESTS),
    # the server cannot answer yet; retrying (elsewhere, or later) can succeed
    (ServerBusyError, UNAVAILABLE),
    (CatalogNotLoadedError, UNAVAILABLE),
    (OnlineStoreUnavailableError, UNAVAILABLE),
    # nothing is applied: no retry helps until someone runs `skewless apply` (gRPC's
    # FAILED_PRECONDITION)
    (NothingAppliedError, CONFLICT),
    # what Redis holds cannot be decoded: a bug or a codec version mismatch
    (CodecError, INTERNAL),
)

# Refusals the operator hears about (a client or the load is at fault, not skewless).
LOGGED: Final[tuple[type[Exception], ...]] = (
    RequestTooLargeError,
    ServerOverloadedError,
    ServerBusyError,
)


def status_for(exc: Exception) -> tuple[int, str]:
    """The HTTP status and message an exception turns into."""
    for error_type, status in STATUS_TABLE:
        if isinstance(exc, error_type):
            return status, str(exc)
    if isinstance(exc, SkewlessError):
        return (UNAVAILABLE if exc.retryable else INTERNAL), str(exc)
    return INTERNAL, f"internal error ({type(exc).__name__}): {exc}"


Endpoint = Callable[[Request], Awaitable[Response]]


def with_status(
    name: str,
    endpoint: Endpoint,
    record: Callable[[int, float], None] | None = None,
    log_interval_s: float = LOG_INTERVAL_S,
) -> Endpoint:
    """`endpoint` with STATUS_TABLE applied to what it raises; `record`, when given, is
    told each call's status and seconds (the server's metrics)."""
    refusals = {kind: LogThrottle(log, logging.WARNING, log_interval_s) for kind in LOGGED}
    internal: dict[type[Exception], LogThrottle] = {}  # one per type: a second bug its own

    def report(exc: Exception, status: int, message: str) -> None:
        if status == INTERNAL:
            if type(exc) not in internal:
                internal[type(exc)] = LogThrottle(log, logging.ERROR, log_interval_s)
            internal[type(exc)].event(f"{name} failed: {message}", exc_info=True)
            return
        for kind, refused in refusals.items():
            if isinstance(exc, kind):
                refused.event(f"{name} refused a call ({status}): {message}")
                return

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            status, message = status_for(exc)
            report(exc, status, message)
            return JSONResponse({"error": type(exc).__name__, "message": message}, status)

    if record is None:
        return answer

    async def timed(request: Request) -> Response:
        start = time.perf_counter()
        response = await answer(request)
        record(response.status_code, time.perf_counter() - start)
        return response

    return timed
