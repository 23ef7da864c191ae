"""Domain errors -> gRPC status codes: the one table, applied by one wrapper.

Handlers contain no try/except: whatever a skewless RPC raises reaches the wrapper that
server.py puts around each handler when it registers it (once, not per call as a server
interceptor would), which looks its type up here (first match wins) and aborts the call
with that code and the error's message, which names the offending feature, view, service
or join key.
Errors not in the table: a retryable SkewlessError is UNAVAILABLE, any other INTERNAL
(logged with its traceback). The same wrapper times each call and hands its status and
seconds to the server's metrics (metrics.py), when it has any.
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
    SkewlessError,
)
from skewless.online.codec import CodecError
from skewless.serving.catalog import CatalogNotLoadedError

log = logging.getLogger(__name__)

Code = grpc.StatusCode

STATUS_TABLE: Final[tuple[tuple[type[Exception], grpc.StatusCode], ...]] = (
    # the caller asked for something that does not exist or sent unusable rows
    (FeatureViewNotFoundError, Code.INVALID_ARGUMENT),
    (FeatureNotFoundError, Code.INVALID_ARGUMENT),
    (FeatureServiceNotFoundError, Code.INVALID_ARGUMENT),
    (InvalidFeatureRefError, Code.INVALID_ARGUMENT),
    (EntityRowsError, Code.INVALID_ARGUMENT),  # missing or mistyped join key
    # the server cannot answer yet; retrying (elsewhere, or later) can succeed
    (NothingAppliedError, Code.FAILED_PRECONDITION),
    (CatalogNotLoadedError, Code.UNAVAILABLE),
    (OnlineStoreUnavailableError, Code.UNAVAILABLE),
    # what Redis holds cannot be decoded: a bug or a codec version mismatch
    (CodecError, Code.INTERNAL),
)


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and details an exception turns into."""
    for error_type, code in STATUS_TABLE:
        if isinstance(exc, error_type):
            return code, str(exc)
    if isinstance(exc, SkewlessError):
        return (Code.UNAVAILABLE if exc.retryable else Code.INTERNAL), str(exc)
    return Code.INTERNAL, f"internal error ({type(exc).__name__}): {exc}"


Handler = Callable[[Any, Any], Any]  # (request, context) -> response or its awaitable


def with_status(
    method: str,
    handler: Handler,
    record: Callable[[grpc.StatusCode, float], None] | None = None,
) -> Handler:
    """`handler` with STATUS_TABLE applied to what it raises; `record`, if given, gets
    every call's status code and seconds in the handler."""

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
            if status is Code.INTERNAL:
                log.exception("%s failed", method)
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
