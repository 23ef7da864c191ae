"""The gRPC and HTTP error tables tell a client the same thing: whether to retry.

Each status is given the retry class a client reads from it, written out below; then
every error type either table names must land in the same class over both transports,
and in the class its own `retryable` flag says."""

from __future__ import annotations

from enum import Enum

import grpc
import pytest

from skewless.errors import (
    EntityRowsError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    InvalidFeatureRefError,
    MalformedRequestError,
    NothingAppliedError,
    OnlineStoreUnavailableError,
    RegistryConflictError,
    RequestTooLargeError,
    ServerBusyError,
    ServerOverloadedError,
    SkewlessError,
    UndecodableRequestError,
)
from skewless.grpc import errors as grpc_errors
from skewless.http import errors as http_errors
from skewless.online.codec import CodecError
from skewless.serving.catalog import CatalogNotLoadedError


class Retry(Enum):
    NOW = "retry now (here once it recovers, or on another server)"
    AFTER_BACKOFF = "retry after a backoff (the server sheds load)"
    NEVER = "do not retry the same call"


Code = grpc.StatusCode

# What a gRPC client reads from each code (grpc.io's status code guide: UNAVAILABLE is
# the transient one; FAILED_PRECONDITION waits for the system to be fixed; Google's
# HTTP mapping of RESOURCE_EXHAUSTED is 429).
GRPC_RETRY = {
    Code.INVALID_ARGUMENT: Retry.NEVER,
    Code.FAILED_PRECONDITION: Retry.NEVER,
    Code.INTERNAL: Retry.NEVER,
    Code.RESOURCE_EXHAUSTED: Retry.AFTER_BACKOFF,
    Code.UNAVAILABLE: Retry.NOW,
}

# What an HTTP client reads from each status (RFC 9110 and RFC 6585).
HTTP_RETRY = {
    400: Retry.NEVER,
    409: Retry.NEVER,
    413: Retry.NEVER,
    500: Retry.NEVER,
    429: Retry.AFTER_BACKOFF,
    503: Retry.NOW,
}

# One of each error type the tables name, and two the tables leave to their fallback.
EXAMPLES: dict[type[Exception], Exception] = {
    FeatureViewNotFoundError: FeatureViewNotFoundError("nope", ["stats"]),
    FeatureNotFoundError: FeatureNotFoundError("stats", "bogus", ["trips"]),
    FeatureServiceNotFoundError: FeatureServiceNotFoundError("nope", ["svc"]),
    InvalidFeatureRefError: InvalidFeatureRefError("stats", "expected 'view:feature'"),
    EntityRowsError: EntityRowsError("no join key 'city'", row=0, key="city"),
    MalformedRequestError: MalformedRequestError("entities", "missing"),
    UndecodableRequestError: UndecodableRequestError("GetOnlineFeaturesRequest", 3),
    RequestTooLargeError: RequestTooLargeError(9, "entity rows", "serving.max_entity_rows", 5),
    ServerOverloadedError: ServerOverloadedError(10, 20, 25),
    ServerBusyError: ServerBusyError("the server is busy"),
    NothingAppliedError: NothingAppliedError("p"),
    CatalogNotLoadedError: CatalogNotLoadedError("not read yet"),
    OnlineStoreUnavailableError: OnlineStoreUnavailableError("refused"),
    CodecError: CodecError("a value is truncated"),
    RegistryConflictError: RegistryConflictError(1, 2),  # retryable, in neither table
    SkewlessError: SkewlessError("odd"),  # not retryable, in neither table
}

# gRPC says RESOURCE_EXHAUSTED both for a call over a `serving:` limit (refused again
# however long the client waits: HTTP's 413) and for an overloaded server (HTTP's 429):
# a gRPC client retrying RESOURCE_EXHAUSTED after a backoff is refused once more.
GRPC_ONLY_BY_ITS_DETAILS: frozenset[type[Exception]] = frozenset({RequestTooLargeError})


def _named_by_the_tables() -> set[type[Exception]]:
    return {t for t, _ in grpc_errors.STATUS_TABLE} | {t for t, _ in http_errors.STATUS_TABLE}


def test_transport_errors_examples_cover_every_type_either_table_names() -> None:
    assert _named_by_the_tables() <= set(EXAMPLES)


def _classes(error: Exception) -> tuple[Retry, Retry]:
    code, _ = grpc_errors.status_for(error)
    status, _ = http_errors.status_for(error)
    return GRPC_RETRY[code], HTTP_RETRY[status]


@pytest.mark.parametrize("error_type", list(EXAMPLES), ids=lambda t: t.__name__)
def test_transport_errors_say_the_same_retry_class_over_grpc_and_http(
    error_type: type[Exception],
) -> None:
    over_grpc, over_http = _classes(EXAMPLES[error_type])
    if error_type in GRPC_ONLY_BY_ITS_DETAILS:
        assert (over_grpc, over_http) == (Retry.AFTER_BACKOFF, Retry.NEVER)
    else:
        assert over_grpc is over_http


@pytest.mark.parametrize("error_type", list(EXAMPLES), ids=lambda t: t.__name__)
def test_transport_errors_retry_class_over_http_is_the_errors_own(
    error_type: type[Exception],
) -> None:
    error = EXAMPLES[error_type]
    _, over_http = _classes(error)
    assert (over_http is not Retry.NEVER) == getattr(error, "retryable", False)


def test_transport_errors_tell_an_overload_from_an_outage() -> None:
    """Shedding load asks for a backoff; an outage or a registry not read yet, for a
    retry; nothing applied, for none (someone must run `skewless apply`)."""
    assert _classes(EXAMPLES[ServerOverloadedError]) == (Retry.AFTER_BACKOFF,) * 2
    for outage in (OnlineStoreUnavailableError, CatalogNotLoadedError, ServerBusyError):
        assert _classes(EXAMPLES[outage]) == (Retry.NOW,) * 2
    assert _classes(EXAMPLES[NothingAppliedError]) == (Retry.NEVER,) * 2
