"""JSON <-> domain types: the HTTP request into the service's inputs, a lookup's answer
into Feast's response JSON. The only module that knows the JSON shapes.

Request (POST /get-online-features), as Feast's feature server takes it:

    {"features": ["view:feature", ...]}  or  {"feature_service": "name"}
    "entities": {"join_key": [value, ...], ...}   one column per join key, equal lengths
    "full_feature_names": false                    optional

Request values of on-demand features are columns of "entities" too, as Feast sends
them: a UnixTimestamp field's values RFC 3339 texts with an offset ("...Z"), a Bytes
field's base64, a float field's NaN and infinities "NaN", "Infinity", "-Infinity" (the
forms the response writes). The service checks every value against the field's type.

Fields other than these four are refused (naming them), so a field skewless does not
implement is never ignored silently; null is taken as absent.

Response, as Feast's feature server answers (column-major: one result per name):

    {"metadata": {"feature_names": [join keys..., features...]},
     "results": [{"values": [...], "statuses": [...], "event_timestamps": [...]}, ...]}

The join keys the requested features use come first, in the order the request lists
them, with the values sent, status PRESENT and event time 1970-01-01T00:00:00Z; then
the features in the order requested ("feature", or "view__feature" with
full_feature_names). Statuses are PRESENT, NOT_FOUND (nothing stored; the event time is
1970-01-01T00:00:00Z) and OUTSIDE_MAX_AGE (stored but older than the view's ttl: value
null, event time the stored one). A stored null is PRESENT with the value null, as the
gRPC response says it; NULL_VALUE is never sent. Event times are RFC 3339 in UTC
("2026-12-03T10:00:00Z", with .fff or .ffffff when they have a fraction of a second),
as protobuf's JSON mapping writes a Timestamp.

Values JSON cannot carry as they are:
- float NaN and infinities: the strings "NaN", "Infinity", "-Infinity" (protobuf's JSON
  mapping of a double; a bare NaN is not JSON);
- bytes: base64 (RFC 4648, with padding), as protobuf's JSON mapping writes bytes;
- UnixTimestamp values: RFC 3339 strings like the event times, to the microsecond;
- integers: JSON numbers with every digit, int64 values past 2**53 included (a
  JavaScript client's JSON.parse rounds those; read them with a big-number parser);
- arrays: JSON arrays, a null element as null, elements written as above.
Join keys of type Bytes cannot be sent (JSON has no bytes); every other key type can.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from skewless.errors import EntityRowsError, MalformedRequestError, clip
from skewless.online.columns import decode_column, decode_columns
from skewless.serving.response import FeatureStatus
from skewless.serving.service import Lookup
from skewless.timeutil import EPOCH
from skewless.types import ArrayType, Bytes, DType, Float32, Float64, UnixTimestamp

FIELDS: Final = ("features", "feature_service", "entities", "full_feature_names")

# --- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonQuery:
    """One request: what to look up, and the entity rows as columns."""

    features: list[str] | str  # feature refs, or a feature service's name
    entities: dict[str, list[Any]]
    rows: int
    full_feature_names: bool = False

    def entity_columns(self, keys: Sequence[str]) -> dict[str, list[Any]]:
        """The columns of `keys` the request has (a missing one is the service's to name)."""
        return {k: self.entities[k] for k in keys if k in self.entities}

    def request_columns(self, fields: Mapping[str, DType]) -> dict[str, list[Any]]:
        """The request fields on-demand features read, sent among `entities` as Feast
        sends them: a UnixTimestamp field's values are RFC 3339 texts, bytes base64; the
        service checks every value's type."""
        out: dict[str, list[Any]] = {}
        for name, dtype in fields.items():
            column = self.entities.get(name)
            if column is None:
                continue
            if dtype == UnixTimestamp:
                column = [_instant(name, i, v) for i, v in enumerate(column)]
            elif dtype == Bytes:
                column = [_request_bytes(name, i, v) for i, v in enumerate(column)]
            elif dtype in (Float32, Float64):
                column = [_NON_FINITE.get(v, v) if isinstance(v, str) else v for v in column]
            out[name] = column
        return out


def _kind(value: Any) -> str:
    """A JSON value's kind, as an error names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def parse_request(body: bytes) -> JsonQuery:
    """The query an HTTP request's body holds; MalformedRequestError naming the field
    when it holds none, EntityRowsError when its entity columns differ in length."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
        raise MalformedRequestError(None, f"not JSON ({clip(str(exc))})") from None
    if not isinstance(doc, dict):
        raise MalformedRequestError(None, f"must be a JSON object, got {_kind(doc)}")
    unknown = [k for k in doc if k not in FIELDS]
    if unknown:
        raise MalformedRequestError(
            unknown[0], f"not a field of this request (it takes {', '.join(FIELDS)})"
        )
    return JsonQuery(
        _features(doc.get("features"), doc.get("feature_service")),
        *_entities(doc.get("entities")),
        full_feature_names=_flag(doc.get("full_feature_names")),
    )


def _features(features: Any, service: Any) -> list[str] | str:
    if service is not None:
        if features is not None:
            raise MalformedRequestError(
                "feature_service", "give either 'features' or 'feature_service', not both"
            )
        if not isinstance(service, str):
            raise MalformedRequestError(
                "feature_service", f"must be a feature service's name, got {_kind(service)}"
            )
        return service
    if features is None:
        raise MalformedRequestError(
            "features",
            'missing: give "features" (a list of "view:feature" references) or '
            '"feature_service" (a name)',
        )
    if not isinstance(features, list):
        raise MalformedRequestError(
            "features", f'must be a list of "view:feature" references, got {_kind(features)}'
        )
    for i, ref in enumerate(features):
        if not isinstance(ref, str):
            raise MalformedRequestError(
                "features", f'item {i} must be a "view:feature" reference, got {_kind(ref)}'
            )
    return features


def _entities(entities: Any) -> tuple[dict[str, list[Any]], int]:
    """The entity columns and the number of rows they hold."""
    if entities is None:
        raise MalformedRequestError(
            "entities", "missing: give an object mapping each join key to a list of values"
        )
    if not isinstance(entities, dict):
        raise MalformedRequestError(
            "entities",
            f"must be an object mapping each join key to a list of values, got {_kind(entities)}",
        )
    for key, column in entities.items():
        if not isinstance(column, list):
            raise MalformedRequestError(
                f"entities.{key}",
                f"must be a list of values (one per entity row), got {_kind(column)}",
            )
    rows = max((len(c) for c in entities.values()), default=0)
    for key, column in entities.items():
        if len(column) != rows:
            longest = next(k for k, c in entities.items() if len(c) == rows)
            raise EntityRowsError(
                f"entity columns differ in length: '{clip(key)}' has {len(column)}, "
                f"'{clip(longest)}' has {rows} values (a column has a value per entity row)",
                key=key,
            )
    return entities, rows


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedRequestError(
            "full_feature_names", f"must be true or false, got {_kind(value)}"
        )
    return value


# --- values -----------------------------------------------------------------------------


def rfc3339(us: int) -> str:
    """Microseconds since the epoch as RFC 3339 in UTC, with as many fraction digits as
    protobuf's JSON mapping writes for them: none, 3 or 6."""
    t = EPOCH + timedelta(microseconds=us)
    text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    fraction = t.microsecond
    if fraction == 0:
        return text + "Z"
    if fraction % 1000 == 0:
        return f"{text}.{fraction // 1000:03d}Z"
    return f"{text}.{fraction:06d}Z"


ZERO_TIME: Final = rfc3339(0)


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_SCALAR: Final[dict[str, Callable[[Any], Any]]] = {
    "float64": _float,
    "float32": _float,
    "bytes": _bytes,
    "unix_timestamp": rfc3339,
}


def json_value(dtype: DType) -> Callable[[Any], Any] | None:
    """How a non-null value of `dtype` (as the online codec decodes it: timestamps in
    microseconds) is written in JSON; None when it is written as it is."""
    if isinstance(dtype, ArrayType):
        element = _SCALAR.get(dtype.element.name)
        if element is None:
            return None
        return lambda items: [None if x is None else element(x) for x in items]
    return _SCALAR.get(dtype.name)


def _written(values: list[Any], dtype: DType) -> list[Any]:
    """Decoded values as JSON writes them."""
    write = json_value(dtype)
    if write is None:
        return values
    if write is _float and math.isfinite(sum(filter(None, values))):
        return values  # no NaN or infinity (they would make the sum one): as they are
    return [None if v is None else write(v) for v in values]


def column_values(column: bytes, rows: int, dtype: DType) -> list[Any]:
    """A feature's JSON values from its column of stored entries (online/columns.py)."""
    return _written(decode_column(column, rows, dtype), dtype)


def feature_values(lookup: Lookup) -> dict[str, list[Any]]:
    """Each output feature's JSON values, from the lookup's stored entries."""
    plan = lookup.plan
    columns = {
        name: column
        for view, got in zip(plan.parts, lookup.views, strict=True)
        for name, column in zip(view.outputs, got.entries, strict=True)
    }
    dtypes = [plan.dtypes[name] for name in plan.features]
    decoded = decode_columns([columns[name] for name in plan.features], dtypes, lookup.rows)
    return {
        name: _written(values, dtype)
        for name, values, dtype in zip(plan.features, decoded, dtypes, strict=True)
    }


# --- responses --------------------------------------------------------------------------


def _times(statuses: Sequence[FeatureStatus], event_ts_us: Sequence[int | None]) -> list[str]:
    written: dict[int, str] = {}  # the rows of a view often share their event times
    out: list[str] = []
    for status, t in zip(statuses, event_ts_us, strict=True):
        if t is None or status is FeatureStatus.NOT_FOUND:
            out.append(ZERO_TIME)
            continue
        text = written.get(t)
        if text is None:
            text = written[t] = rfc3339(t)
        out.append(text)
    return out


_dump: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _result(values: str, statuses: str, times: str) -> str:
    return f'{{"values":{values},"statuses":{statuses},"event_timestamps":{times}}}'


def encode_lookup(lookup: Lookup, entities: Mapping[str, list[Any]]) -> bytes:
    """Feast's response JSON (UTF-8) for a lookup of the rows `entities`.

    Written a result at a time: the statuses and event times of a view are the same for
    each of its features, so each view's are written once and repeated as text (at 100
    rows x 50 features that halves the time spent in the JSON encoder)."""
    plan, rows = lookup.plan, lookup.rows
    needed = set(plan.join_keys)
    keys = [k for k in entities if k in needed]
    parts: list[str] = []
    if keys:
        present, zero = _dump(["PRESENT"] * rows), _dump([ZERO_TIME] * rows)
        parts.extend(_result(_dump(entities[k]), present, zero) for k in keys)
    tails: dict[str, tuple[str, str]] = {}
    for view, got in zip(plan.parts, lookup.views, strict=True):
        tail = (
            _dump([s.value for s in got.statuses]),
            _dump(_times(got.statuses, got.event_ts_us)),
        )
        tails.update(dict.fromkeys(view.outputs, tail))
    values = feature_values(lookup)
    parts.extend(_result(_dump(values[name]), *tails[name]) for name in plan.features)
    names = _dump([*keys, *plan.features])
    text = f'{{"metadata":{{"feature_names":{names}}},"results":[{",".join(parts)}]}}'
    return text.encode()


_NON_FINITE: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _instant(field: str, row: int, value: Any) -> Any:
    if not isinstance(value, str):
        return value  # None, or a value the service names as of the wrong type
    try:
        if _RFC3339.fullmatch(value) is None:
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise EntityRowsError(
            f"request field '{clip(field)}' is unix_timestamp; {clip(value)!r} is not an "
            "RFC 3339 time",
            row=row,
            key=field,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _request_bytes(field: str, row: int, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise EntityRowsError(
            f"request field '{clip(field)}' is bytes; {clip(value)!r} is not base64",
            row=row,
            key=field,
        ) from None
