"""Hostile requests to the gRPC contract, drawn by hypothesis, and the codes each may get.

Two kinds of input:

- *structured*: a GetOnlineFeaturesRequest with random feature references and service
  names (known ones, unknown ones, malformed, non-ASCII, huge), random entity columns
  (known and unknown join keys, values of every kind including lists, mixed types,
  unequal lengths, `missing_indices` out of range) and random request columns;
- *raw*: bytes sent as they are: garbage, valid requests with bytes flipped, inserted
  or cut, requests whose strings are not UTF-8 (a reference, the service name, a join
  key's name, a string value), and requests over the size limits.

`expected_codes` says which status codes an input may get, given the server's limits:
never UNKNOWN or INTERNAL; RESOURCE_EXHAUSTED only over a limit (so an error whose
details overflow gRPC's metadata cannot pass for a refusal); INVALID_ARGUMENT for what
does not decode. An OK answer must have one column per requested feature and one entry
per entity row in each.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, cast

import grpc
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from benchmarks.loadgen import stats
from benchmarks.reliability.processes import GET_ONLINE_FEATURES
from benchmarks.reliability.repo import CITIES, JOIN_KEYS, SERVICE, STATS_REFS, ZONE_REFS
from skewless._proto.skewless.serving.v1 import serving_pb2 as pb

Request = pb.GetOnlineFeaturesRequest
OK_CODES: Final = frozenset({"OK", "INVALID_ARGUMENT"})
REFUSED: Final = frozenset({"RESOURCE_EXHAUSTED"})
DETAILS_MAX_CHARS: Final = 4096  # well under gRPC's 8 KiB of metadata
GRPC_MAX_RECEIVE: Final = 4 * 1024 * 1024  # a gRPC client's default limit of a message
SERVICE_FEATURES: Final = 4  # features of the repo's service


@dataclass(frozen=True)
class Limits:
    """The `serving:` section the fuzzed server runs with: small, so that requests over
    a limit are cheap to make."""

    max_entity_rows: int = 24
    max_features: int = 12
    max_response_values: int = 120  # entity rows x features
    max_request_bytes: int = 48 * 1024

    def section(self) -> dict[str, int]:
        """The limits as feature_store.yaml's `serving:` keys."""
        return dict(self.__dict__)

    @property
    def receive_cap(self) -> int:
        """Past this size gRPC refuses a request itself, before the server's code sees
        it (so it is not counted)."""
        from skewless.grpc.server import receive_cap  # noqa: PLC0415

        return receive_cap(self.max_request_bytes)


# --- strategies -------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# Up to 40 KB of UTF-8: big names a request within the byte limit can hold (the bigger
# requests of the oversized strategy are cheaper to make than to draw).
_huge_sizes = st.sampled_from([300, 5_000, 20_000])


def _huge(prefix: str = "") -> st.SearchStrategy[str]:
    return st.builds(lambda n, tail: prefix + "é" * n + tail, _huge_sizes, _text)


def _names(known: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Known names, and some that are not: random, non-ASCII, near-misses, huge."""
    return st.one_of(
        st.sampled_from(known),
        _text,
        st.sampled_from(known).map(lambda n: n.upper()),
        st.sampled_from(known).map(lambda n: n + "\u00a0"),
        _huge(),
    )


_refs = st.one_of(
    st.sampled_from(STATS_REFS + ZONE_REFS),
    st.builds(lambda v, f: f"{v}:{f}", st.sampled_from(["stats", "zones"]), _text),
    st.builds(lambda v, f: f"{v}:{f}", _text, _text),
    _text,
    st.sampled_from(["stats:", ":rating", "::", "stats:rating:x", "stats :rating"]),
    _huge("stats:"),
    _huge(),
)

_DRAWN_MAX = 60  # rows and references in a drawn request, whatever the limits
_uint32 = st.integers(0, 2**32 - 1)
_int64 = st.integers(-(2**63), 2**63 - 1)
_int32 = st.integers(-(2**31), 2**31 - 1)


def _list_value(kind: str, element: st.SearchStrategy[Any], message: Any) -> st.SearchStrategy[Any]:
    return st.builds(
        lambda values, nulls: pb.Value(**{kind: message(values=values, null_indices=nulls)}),
        st.lists(element, max_size=4),
        st.lists(_uint32, max_size=2),
    )


_any_value: st.SearchStrategy[Any] = st.one_of(
    st.just(pb.Value()),
    _int64.map(lambda v: pb.Value(int64_value=v)),
    _int32.map(lambda v: pb.Value(int32_value=v)),
    _int64.map(lambda v: pb.Value(unix_timestamp_value=v)),
    st.floats().map(lambda v: pb.Value(double_value=v)),
    st.floats(width=32).map(lambda v: pb.Value(float_value=v)),
    st.booleans().map(lambda v: pb.Value(bool_value=v)),
    _text.map(lambda v: pb.Value(string_value=v)),
    st.binary(max_size=20).map(lambda v: pb.Value(bytes_value=v)),
    _list_value("int64_list_value", _int64, pb.Int64List),
    _list_value("int32_list_value", _int32, pb.Int32List),
    _list_value("double_list_value", st.floats(), pb.DoubleList),
    _list_value("float_list_value", st.floats(width=32), pb.FloatList),
    _list_value("string_list_value", _text, pb.StringList),
    _list_value("bool_list_value", st.booleans(), pb.BoolList),
    _list_value("bytes_list_value", st.binary(max_size=8), pb.BytesList),
    _list_value("unix_timestamp_list_value", _int64, pb.Int64List),
)

# Values each join key takes (known entities, unknown ones, nulls).
_typed_key_values: dict[str, st.SearchStrategy[Any]] = {
    "driver_id": st.one_of(
        st.integers(0, 2_500).map(lambda v: pb.Value(int64_value=v)), st.just(pb.Value())
    ),
    "city": st.one_of(
        st.sampled_from(CITIES).map(lambda v: pb.Value(string_value=v)), st.just(pb.Value())
    ),
    "zone_id": st.one_of(
        st.integers(0, 30).map(lambda v: pb.Value(int64_value=v)), st.just(pb.Value())
    ),
}
# Mostly values a key can have, so that many requests get as far as Redis.
_key_values: dict[str, st.SearchStrategy[Any]] = {
    key: st.one_of(typed, typed, _any_value) for key, typed in _typed_key_values.items()
}


_key_names = st.lists(_names(JOIN_KEYS), max_size=4, unique=True)
_bools = st.booleans()
_small = st.integers(0, 3)


@st.composite
def _columns(draw: st.DrawFn, rows_max: int, *, hostile: bool) -> dict[str, Any]:
    """Entity columns: with `hostile`, any names, kinds and lengths; else the join keys,
    values of their types and rows sent without a key now and then. (Elements are drawn
    one by one: a list strategy built per draw costs more than the request's call.)"""
    rows = draw(st.integers(0, rows_max))
    keys = draw(_key_names) if hostile else list(JOIN_KEYS)
    columns: dict[str, Any] = {}
    for key in keys:
        length = rows + draw(_small) - 1 if hostile and draw(_bools) else rows
        length = max(length, 0)
        values = _key_values.get(key, _any_value) if hostile else _typed_key_values[key]
        missing: list[int] = []
        if length and (draw(_bools) if hostile else draw(_small) == 0):
            index = st.integers(0, length - 1)
            if hostile and draw(_bools):
                index = _uint32
            missing = [draw(index) for _ in range(draw(_small))]
        columns[key] = pb.ValueColumn(
            values=[draw(values) for _ in range(length)], missing_indices=missing
        )
    return columns


@st.composite
def requests(draw: st.DrawFn, limits: Limits) -> Request:
    """A structured request: a plausible one (known features, typed join keys; some over
    a limit) or, more often, a hostile one."""
    hostile = draw(st.integers(0, 9)) >= 4
    rows_max = min(limits.max_entity_rows + 5, _DRAWN_MAX)
    request = Request(
        entity_columns=draw(_columns(rows_max, hostile=hostile)),
        full_feature_names=draw(st.booleans()),
    )
    if not hostile:
        if draw(st.booleans()):
            refs = st.sampled_from(STATS_REFS + ZONE_REFS)
            request.features.extend(draw(st.lists(refs, min_size=1, max_size=8)))
        else:
            request.feature_service = SERVICE
        return request
    choice = draw(st.sampled_from(["features", "service", "both", "neither"]))
    if choice in ("features", "both"):
        refs_max = min(limits.max_features + 3, _DRAWN_MAX)
        request.features.extend(draw(st.lists(_refs, max_size=refs_max)))
    if choice in ("service", "both"):
        request.feature_service = draw(_names((SERVICE,)))
    if draw(st.integers(0, 9)) == 0:
        for key, column in draw(_columns(3, hostile=True)).items():
            request.request_columns[key].CopyFrom(column)
    return request


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_BAD_UTF8 = st.sampled_from(
    [b"\xff", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88"]
)


@st.composite
def _not_utf8(draw: st.DrawFn) -> bytes:
    """A request whose string field holds bytes that are not UTF-8: a reference, the
    service name, a join key's name or a string value."""
    text = draw(_text).encode()
    bad = text[: len(text) // 2] + draw(_BAD_UTF8) + text[len(text) // 2 :]
    where = draw(st.sampled_from(["feature", "service", "key", "value"]))
    driver = pb.ValueColumn(values=[pb.Value(int64_value=1)]).SerializeToString()
    match where:
        case "feature":
            return _field(2, b"stats:rating") + _field(2, bad)
        case "service":
            return _field(3, bad)
        case "key":
            return _field(1, _field(1, bad) + _field(2, driver)) + _field(2, b"stats:rating")
        case _:
            column = _field(1, _field(3, bad))  # ValueColumn.values[0].string_value
            return _field(1, _field(1, b"city") + _field(2, column)) + _field(2, b"zones:demand")


@st.composite
def _mutated(draw: st.DrawFn, limits: Limits) -> bytes:
    data = bytearray(draw(requests(limits)).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        match draw(st.sampled_from(["flip", "insert", "cut"])):
            case "flip" if data:
                at = min(at, len(data) - 1)
                data[at] ^= 1 << draw(st.integers(0, 7))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
            case _:
                del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


def _oversized(limits: Limits) -> st.SearchStrategy[bytes]:
    """Requests over the configured byte limit: just over it, around the cap where gRPC
    refuses them itself, and over gRPC's default 4 MiB."""
    cap = limits.receive_cap
    sizes = st.sampled_from(
        [limits.max_request_bytes + 1, cap - 64, cap + 1, GRPC_MAX_RECEIVE + 1024]
    )
    return st.builds(
        lambda size, where: (
            _field(2, b"stats:rating")
            + (_field(3, b"s" * size) if where == "service" else _field(2, b"x" * size))
        ),
        sizes,
        st.sampled_from(["service", "feature"]),
    )


def raw_inputs(limits: Limits) -> st.SearchStrategy[bytes]:
    """Bytes to send as a request, valid or not; one in 25 over the byte limit (a
    request past gRPC's own cap takes a few hundred milliseconds to be refused)."""
    common = st.one_of(
        st.binary(max_size=300),
        _mutated(limits),
        _not_utf8(),
        st.sampled_from([b"", b"\x0a", b"\x12\xff\xff\xff\xff\x0f", b"\x08" * 10]),
    )
    oversized = _oversized(limits)
    return st.integers(0, 24).flatmap(lambda n: oversized if n == 0 else common)


# --- the codes an input may get ---------------------------------------------------------


def _rows(request: Request) -> int:
    return max((len(c.values) for c in request.entity_columns.values()), default=0)


def _feature_count(request: Request) -> int:
    """The most features the request can be counted as asking for."""
    service = SERVICE_FEATURES if request.feature_service == SERVICE else 0
    return max(len(request.features), service)


def expected_codes(data: bytes, limits: Limits) -> frozenset[str]:
    """The status codes the request `data` may get from a server with `limits` and Redis
    up."""
    if len(data) > limits.max_request_bytes:
        return REFUSED
    try:
        request = Request.FromString(data)
    except DecodeError:
        return frozenset({"INVALID_ARGUMENT"})
    rows, features = _rows(request), _feature_count(request)
    if (
        rows > limits.max_entity_rows
        or features > limits.max_features
        or rows * features > limits.max_response_values
    ):
        # which check comes first (a limit or the request's own validity) is the server's
        return REFUSED | {"INVALID_ARGUMENT"}
    return OK_CODES


def _answer_problem(data: bytes, reply: bytes) -> str | None:
    """What is wrong with an OK answer's shape, if anything."""
    request = Request.FromString(data)
    response = pb.GetOnlineFeaturesResponse.FromString(reply)
    rows = _rows(request)
    wanted = len(request.features) or SERVICE_FEATURES
    if len(response.features) != wanted:
        return f"{len(response.features)} feature columns for {wanted} features"
    for column in response.features:
        if len(column.values) != rows or len(column.statuses) != rows:
            return f"column {column.name[:50]!r} has {len(column.values)} values for {rows} rows"
    return None


# --- sending ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    kind: str  # "structured" or "raw"
    size: int  # request bytes
    code: str
    details_chars: int
    seconds: float
    problem: str | None  # None: an answer this input may get


def send(
    call: Callable[..., bytes], kind: str, data: bytes, limits: Limits, timeout_s: float = 30
) -> Outcome:
    """Send `data` as a request and judge the answer."""
    started = time.perf_counter()
    reply: bytes | None = None
    try:
        reply = call(data, timeout=timeout_s)
        code, details = "OK", ""
    except grpc.RpcError as exc:
        error = cast("grpc.Call", exc)
        code, details = error.code().name, error.details() or ""
    seconds = time.perf_counter() - started
    allowed = expected_codes(data, limits)
    problem = None
    if code not in allowed:
        problem = f"{code} ({details[:300]!r}); expected one of {sorted(allowed)}"
    elif len(details) > DETAILS_MAX_CHARS:
        problem = f"{code} with {len(details)} characters of details"
    elif reply is not None:
        problem = _answer_problem(data, reply)
    return Outcome(kind, len(data), code, len(details), seconds, problem)


def unary(channel: grpc.Channel) -> Callable[..., bytes]:
    """GetOnlineFeatures on `channel`, sending and receiving raw bytes."""
    return cast("Callable[..., bytes]", channel.unary_unary(GET_ONLINE_FEATURES))


def channel(target: str) -> grpc.Channel:
    # The client sends whatever size it is given: the server is the one judging.
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ],
    )


@dataclass
class FuzzResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def problems(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.problem is not None]

    def figures(self) -> dict[str, Any]:
        by_kind: dict[str, Any] = {}
        for kind in ("structured", "raw"):
            mine = [o for o in self.outcomes if o.kind == kind]
            by_kind[kind] = {
                "requests": len(mine),
                "codes": dict(sorted(Counter(o.code for o in mine).items())),
            }
        seconds = [o.seconds for o in self.outcomes]
        return {
            "requests": len(self.outcomes),
            "codes": dict(sorted(Counter(o.code for o in self.outcomes).items())),
            "by_kind": by_kind,
            "problems": len(self.problems),
            "problem_examples": [o.problem for o in self.problems[:10]],
            "max_details_chars": max((o.details_chars for o in self.outcomes), default=0),
            "max_request_bytes": max((o.size for o in self.outcomes), default=0),
            "latency": {k: round(v, 3) for k, v in stats(seconds).items()} if seconds else {},
        }


def sweep(
    target: str, limits: Limits, *, structured: int, raw: int, seed_value: int = 0
) -> FuzzResult:
    """`structured` + `raw` inputs drawn by hypothesis (generation only: nothing is
    shrunk, every outcome is kept), each sent once."""
    result = FuzzResult()
    config = settings(
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    with channel(target) as ch:
        call = unary(ch)

        @seed(seed_value)
        @settings(config, max_examples=max(structured, 1))
        @given(requests(limits))
        def structured_inputs(request: Request) -> None:
            data = request.SerializeToString()
            result.outcomes.append(send(call, "structured", data, limits))

        @seed(seed_value)
        @settings(config, max_examples=max(raw, 1))
        @given(raw_inputs(limits))
        def raw_bytes(data: bytes) -> None:
            result.outcomes.append(send(call, "raw", data, limits))

        if structured:
            structured_inputs()
        if raw:
            raw_bytes()
    return result
