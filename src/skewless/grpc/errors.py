"""Domain errors -> gRPC status codes: the one table, applied by one wrapper.

Handlers contain no try/except: whatever a skewless RPC raises reaches the wrapper that
server.py puts around each handler when it registers it (once, not per call as a server
interceptor would), which looks its type up here (first match wins) and aborts the call
with that code and the error's message, which names the offending feature, view, service
or join key.
Errors not in the table: a retryable SkewlessError is UNAVAILABLE, any other INTERNAL.
The same wrapper times each call and hands its status and seconds to the server's metrics
(metrics.py), when it has any.

Client-supplied text in the details is already clipped by the errors (errors.clip); the
details are bounded here as well, so a status never outgrows gRPC's metadata limit
(8 KiB by default, which turns any status into RESOURCE_EXHAUSTED). What the operator
should hear about (undecodable requests, calls over a limit, internal errors) is logged
at most once per LOG_INTERVAL_S for each kind, with the count, never once per call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import grpc
import grpc.aio

from skewless.errors import (
    EntityRowsError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    InvalidFeatureRefError,
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

Code = grpc.StatusCode

STATUS_TABLE: Final[tuple[tuple[type[Exception], grpc.StatusCode], ...]] = (
    # the caller asked for something that does not exist or sent unusable rows
    (FeatureViewNotFoundError, Code.INVALID_ARGUMENT),
    (FeatureNotFoundError, Code.INVALID_ARGUMENT),
    (FeatureServiceNotFoundError, Code.INVALID_ARGUMENT),
    (InvalidFeatureRefError, Code.INVALID_ARGUMENT),
    (EntityRowsError, Code.INVALID_ARGUMENT),  # missing or mistyped join key
    (UndecodableRequestError, Code.INVALID_ARGUMENT),  # garbage, or a string not UTF-8
    # over one of the server's limits (the `serving` section of feature_store.yaml)
    (RequestTooLargeError, Code.RESOURCE_EXHAUSTED),
    (ServerOverloadedError, Code.RESOURCE_EXHAUSTED),  # too many request bytes in flight
    # the server itself ran out of the call's time before asking Redis; answered before
    # the caller's deadline, as a retryable refusal, which says the server is busy
    (ServerBusyError, Code.UNAVAILABLE),
    # the server cannot answer yet; retrying (elsewhere, or later) can succeed
    (NothingAppliedError, Code.FAILED_PRECONDITION),
    (CatalogNotLoadedError, Code.UNAVAILABLE),
    (OnlineStoreUnavailableError, Code.UNAVAILABLE),
    # what Redis holds cannot be decoded: a bug or a codec version mismatch
    (CodecError, Code.INTERNAL),
)


# The details' size in UTF-8 bytes: percent-encoded in the grpc-message trailer, even
# the worst case (3 characters a byte) stays well within the 8 KiB metadata limit.
MAX_DETAILS_BYTES: Final = 2000

# Refusals and failures the operator hears about, each kind at most once an interval.
LOGGED: Final[tuple[type[Exception], ...]] = (
    UndecodableRequestError,
    RequestTooLargeError,
    ServerOverloadedError,
    ServerBusyError,
)


def bounded(details: str) -> str:
    """`details` cut to MAX_DETAILS_BYTES, saying so."""
    raw = details.encode()
    if len(raw) <= MAX_DETAILS_BYTES:
        return details
    return raw[:MAX_DETAILS_BYTES].decode(errors="ignore") + f"...({len(raw)} bytes)"


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and details an exception turns into."""
    for error_type, code in STATUS_TABLE:
        if isinstance(exc, error_type):
            return code, bounded(str(exc))
    if isinstance(exc, SkewlessError):
        return (Code.UNAVAILABLE if exc.retryable else Code.INTERNAL), bounded(str(exc))
    return Code.INTERNAL, bounded(f"internal error ({type(exc).__name__}): {exc}")


Handler = Callable[[Any, Any], Any]  # (request, context) -> response or its awaitable


def with_status(
    method: str,
    handler: Handler,
    record: Callable[[grpc.StatusCode, float], None] | None = None,
    log_interval_s: float = LOG_INTERVAL_S,
) -> Handler:
    """`handler` with STATUS_TABLE applied to what it raises; `record`, if given, gets
    every call's status code and seconds in the handler."""
    throttles = {kind: LogThrottle(log, logging.WARNING, log_interval_s) for kind in LOGGED}
    # one per type of internal error: a second, different bug logs its own traceback
    internal: dict[type[Exception], LogThrottle] = {}

    def report(exc: Exception, status: grpc.StatusCode, details: str) -> None:
        if status is Code.INTERNAL:
            throttle = internal.get(type(exc))
            if throttle is None:
                throttle = internal[type(exc)] = LogThrottle(log, logging.ERROR, log_interval_s)
            throttle.event(f"{method} failed: {details}", exc_info=True)
            return
        for kind, throttle in throttles.items():
            if isinstance(exc, kind):
                throttle.event(f"{method} refused a call ({status.name}): {details}")
                return

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        code: grpc.StatusCode | None = Code.OK  # None once recorded
        try:
            result = handler(request, context)
            return await result if inspect.isawaitable(result) else result
        except grpc.aio.AbortError:
            code = context.code()  # the handler chose its status itself
            raise
        except asyncio.CancelledError:
            code = Code.CANCELLED  # the client went away or its deadline passed
            raise
        except Exception as exc:
            status, details = status_for(exc)
            report(exc, status, details)
            # Recorded before abort() sends the status: a client that has seen the error
            # then finds it counted (the finally below would run after the send).
            if record is not None:
                record(status, time.perf_counter() - started)
            code = None
            await context.abort(status, details)
        finally:
            if record is not None and code is not None:
                record(code, time.perf_counter() - started)

    return call
