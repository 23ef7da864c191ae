"""Online feature lookups on plain domain types (no transport here).

For every entity row and requested feature: the value stored online, its event time,
and a status: PRESENT, NOT_FOUND (no value stored for the entity), or OUTSIDE_MAX_AGE
(a value is stored but its event time is older than request time minus the view's ttl,
the same rule the offline join applies; its value is then withheld as null).

The logic is pure and compiled once per list of feature refs into a LookupPlan
(serving/plan.py: keys of every view, read with one MGET, decoded straight into columns);
`lookup`/`get_online_features` (blocking) and the gRPC server (grpc/backend.py) only add
the Redis read, so both paths answer identically by construction.
"""

from __future__ import annotations

import enum
import numbers
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from skewless.batch.compile import ViewRequest
from skewless.errors import EntityDataFrameError
from skewless.online.codec import entity_key
from skewless.serving.plan import LookupPlan
from skewless.timeutil import utc_micros


class FeatureStatus(enum.Enum):
    PRESENT = "PRESENT"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


@dataclass(frozen=True)
class OnlineResponse:
    """Per row, per feature: value, status and event time (UTC)."""

    join_keys: list[str]
    entity_rows: list[dict[str, Any]]
    features: list[str]
    values: dict[str, list[Any]]
    statuses: dict[str, list[FeatureStatus]]
    event_timestamps: dict[str, list[datetime | None]]

    def to_dict(self) -> dict[str, list[Any]]:
        """Each join key and feature name to a list of values, in row order."""
        out: dict[str, list[Any]] = {
            k: [row.get(k) for row in self.entity_rows] for k in self.join_keys
        }
        out.update({f: list(self.values[f]) for f in self.features})
        return out

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame(self.to_dict())


_KEY_TYPES: dict[str, tuple[type, ...]] = {
    "int64": (numbers.Integral,),
    "int32": (numbers.Integral,),
    "unix_timestamp": (numbers.Integral,),
    "string": (str,),
    "bytes": (bytes,),
    "bool": (bool,),
}
_ENCODABLE = (bool, numbers.Integral, str, bytes)


def check_join_keys(
    requests: Sequence[ViewRequest], entity_rows: Sequence[Mapping[str, Any]]
) -> None:
    """Every join key the requests need is in every row, with a value the online key
    encoding takes (an integer, str, bytes, bool, or null, which finds nothing), of the
    type the view's schema pins when it pins one. Raises EntityDataFrameError naming the
    key. In-process and gRPC lookups both go through here, so both refuse the same rows."""
    checks: dict[str, tuple[str, tuple[type, ...] | None]] = {}
    for req in requests:
        pinned = {f.name: f.dtype.name for f in req.view.key_fields}
        for key in req.join_keys:
            if key not in checks:
                checks[key] = (req.name, _KEY_TYPES.get(pinned.get(key, "")))
    for i, row in enumerate(entity_rows):
        for key, (view, expected) in checks.items():
            if key not in row:
                raise EntityDataFrameError(
                    f"entity row {i} has no join key '{key}' (needed by feature view '{view}')",
                    column=key,
                )
            value = row[key]
            if value is None:
                continue
            if expected is None:
                ok = isinstance(value, _ENCODABLE)
            elif expected == (bool,):
                ok = isinstance(value, bool)
            else:  # a bool is an int to Python, not to the key encoding
                ok = isinstance(value, expected) and not isinstance(value, bool)
            if not ok:
                want = "int, str, bytes or bool" if expected is None else _names(expected)
                raise EntityDataFrameError(
                    f"entity row {i}: join key '{key}' of feature view '{view}' is a "
                    f"{type(value).__name__} ({value!r}); expected {want}",
                    column=key,
                )


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("int" if t is numbers.Integral else t.__name__ for t in types)


def lookup_keys(
    project: str, requests: Sequence[ViewRequest], entity_rows: Sequence[Mapping[str, Any]]
) -> list[list[bytes]]:
    """The Redis keys to read: one list per request (view), one key per entity row."""
    check_join_keys(requests, entity_rows)
    return [
        [entity_key(project, req.name, [row[k] for k in req.join_keys]) for row in entity_rows]
        for req in requests
    ]


def required_keys(requests: Sequence[ViewRequest]) -> list[str]:
    keys: list[str] = []
    for req in requests:
        keys.extend(k for k in req.join_keys if k not in keys)
    return keys


def assemble(
    requests: Sequence[ViewRequest],
    entity_rows: Sequence[Mapping[str, Any]],
    raw: Sequence[Sequence[bytes | None]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """Decode what Redis returned (one list per request) into the response."""
    plan = LookupPlan("", requests)  # no keys are built here: the project is not needed
    flat = [value for values in raw for value in values]
    return _answer(plan, entity_rows, flat, request_time)


def _answer(
    plan: LookupPlan,
    entity_rows: Sequence[Mapping[str, Any]],
    raw: Sequence[bytes | None],
    request_time: datetime | None,
) -> OnlineResponse:
    now_us = utc_micros(request_time or datetime.now(UTC))
    return plan.response(entity_rows, plan.assemble(raw, len(entity_rows), now_us))


def lookup(
    plan: LookupPlan,
    read: Callable[[list[bytes]], list[bytes | None]],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """A blocking lookup with a compiled plan: one `read` (an MGET) for every view."""
    keys = plan.keys(entity_rows)
    return _answer(plan, entity_rows, read(keys) if keys else [], request_time)


def get_online_features(
    read: Callable[[list[bytes]], list[bytes | None]],
    project: str,
    requests: Sequence[ViewRequest],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """Blocking lookup; `read` is an MGET (e.g. RedisOnlineStore.read)."""
    return lookup(LookupPlan(project, requests), read, entity_rows, request_time)


async def get_online_features_async(
    read: Callable[[list[bytes]], Awaitable[list[bytes | None]]],
    project: str,
    requests: Sequence[ViewRequest],
    entity_rows: Sequence[Mapping[str, Any]],
    request_time: datetime | None = None,
) -> OnlineResponse:
    """The same lookup for asyncio servers; `read` is an async MGET."""
    plan = LookupPlan(project, requests)
    keys = plan.keys(entity_rows)
    raw = await read(keys) if keys else []
    return _answer(plan, entity_rows, raw, request_time)
