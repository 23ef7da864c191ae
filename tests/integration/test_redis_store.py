"""The Redis online store against a real redis-server: ordered, atomic writes."""

from __future__ import annotations

import random
import struct
import threading
from datetime import timedelta

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.errors import OnlineStoreUnavailableError
from skewless.online.codec import Record, decode_value, encode_value, entity_key
from skewless.online.redis import RedisOnlineStore, expire_at_ms
from skewless.types import Float64, Int64

DTYPES = [Int64, Float64]


@pytest.fixture
def store(redis_url: str) -> RedisOnlineStore:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return RedisOnlineStore(client, batch_size=3)


def item(
    entity: int, ets: int, cts: int | None, value: int, expire: int = 0, tie: int = 0
) -> tuple[bytes, bytes, int]:
    key = entity_key("p", "v", [entity])
    return key, encode_value(Record(ets, cts, (value, float(value)), tie), DTYPES), expire


def stored(store: RedisOnlineStore, entity: int) -> Record | None:
    raw = store.read([entity_key("p", "v", [entity])])[0]
    return None if raw is None else decode_value(raw, DTYPES)


def test_redis_newer_replaces_older_never(store: RedisOnlineStore) -> None:
    assert store.write([item(1, 100, None, 1)]).written == 1
    result = store.write([item(1, 50, None, 2), item(1, 100, None, 3)])
    assert (result.written, result.skipped) == (0, 2)  # older, then an equal replay
    assert stored(store, 1) == Record(100, None, (1, 1.0))
    assert store.write([item(1, 101, None, 4)]).written == 1
    assert stored(store, 1) == Record(101, None, (4, 4.0))


def _version_2_value(ets: int, cts: int) -> bytes:
    """A value as codec version 2 stored it: a 20-byte header holding the event and
    created times at the place version 3 holds them, then its body."""
    return struct.pack(">BBHQQ", 2, 0, 0, ets + 2**63, cts + 2**63) + b"\x06\x00\x06\x00"


def test_redis_a_value_of_an_older_codec_version_is_replaced_never_the_reverse(
    store: RedisOnlineStore,
) -> None:
    """A value an older skewless stored is replaced by any value of this version, even
    one of an earlier row (what a full run after an upgrade writes); a value of a newer
    version is never replaced."""
    key = entity_key("p", "v", [1])
    assert store.write([(key, _version_2_value(100, 5), 0)]).written == 1
    assert store.write([item(1, 99, 5, 1, tie=-(2**63))]).written == 1  # an earlier row
    raw = store.read([key])[0]
    assert raw is not None and raw[0] == 3
    assert decode_value(raw, DTYPES) == Record(99, 5, (1, 1.0), -(2**63))
    assert store.write([item(1, 99, 5, 1, tie=-(2**63))]).written == 0  # a replay
    assert store.write([(key, _version_2_value(100, 6), 0)]).written == 0  # older writer
    newer = b"\x04" + raw[1:]  # a version this skewless does not know
    store.client.set(key, newer)
    assert store.write([item(1, 200, 5, 2)]).written == 0
    assert store.read([key])[0] == newer
    store.client.set(key, b"")  # an empty value: replaced
    assert store.write([item(1, 1, None, 3)]).written == 1


def test_redis_same_event_time_later_created_wins(store: RedisOnlineStore) -> None:
    store.write([item(1, 100, 5, 1)])
    store.write([item(1, 100, None, 2)])  # a null created time ranks lowest
    assert stored(store, 1) == Record(100, 5, (1, 1.0))
    store.write([item(1, 100, 6, 3)])
    assert stored(store, 1) == Record(100, 6, (3, 3.0))
    store.write([item(1, 100, -(2**40), 4)])  # negative times order correctly too
    assert stored(store, 1) == Record(100, 6, (3, 3.0))


def test_redis_same_times_higher_tie_hash_wins_in_either_order(store: RedisOnlineStore) -> None:
    store.write([item(1, 100, None, 1, tie=7)])
    store.write([item(1, 100, None, 2, tie=-8)])
    assert stored(store, 1) == Record(100, None, (1, 1.0), 7)
    store.write([item(1, 100, None, 3, tie=2**63 - 1)])
    assert stored(store, 1) == Record(100, None, (3, 3.0), 2**63 - 1)
    store.write([item(2, 100, 4, 2, tie=-8), item(2, 100, 4, 1, tie=7)])  # one batch
    assert stored(store, 2) == Record(100, 4, (1, 1.0), 7)


RANKS = st.tuples(
    st.integers(-2, 2),  # event time
    st.none() | st.integers(-2, 2),  # created time
    st.sampled_from([-(2**63), -(2**32) - 1, -1, 0, 1, 2**32, 2**63 - 1]),  # tie hash
)


@settings(max_examples=60)
@given(ranks=st.lists(RANKS, min_size=1, max_size=12), batch=st.integers(1, 4))
def test_redis_ordered_writes_keep_the_highest_rank_of_any_sequence(
    redis_url: str, ranks: list[tuple[int, int | None, int]], batch: int
) -> None:
    """Whatever order rows are written in, and however they are batched, the value that
    stays is the highest by (event time, created time with null lowest, tie hash); of
    rows equal on all three, the first written."""
    client = redis.Redis.from_url(redis_url)
    client.delete(entity_key("p", "v", [1]))
    store = RedisOnlineStore(client, batch_size=batch)
    store.write([item(1, ets, cts, value, tie=tie) for value, (ets, cts, tie) in enumerate(ranks)])

    def order(i: int) -> tuple[int, int, int, int, int]:
        ets, cts, tie = ranks[i]
        return (ets, cts is not None, cts or 0, tie, -i)

    best = max(range(len(ranks)), key=order)
    assert stored(store, 1) == Record(
        ranks[best][0], ranks[best][1], (best, float(best)), ranks[best][2]
    )


def test_redis_concurrent_shuffled_writers_end_at_the_newest(
    store: RedisOnlineStore, redis_url: str
) -> None:
    versions = [(ets, cts) for ets in range(20) for cts in (None, 1, 2)]
    newest = dict.fromkeys(range(30), (19, 2))

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        own = RedisOnlineStore(redis.Redis.from_url(redis_url), batch_size=7)
        items = [
            item(e, ets, cts, ets * 10 + (cts or 0)) for e in range(30) for ets, cts in versions
        ]
        rng.shuffle(items)
        own.write(items)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, (ets, cts) in newest.items():
        assert stored(store, e) == Record(ets, cts, (ets * 10 + cts, float(ets * 10 + cts)))


def test_redis_expiry_follows_the_view_ttl(store: RedisOnlineStore) -> None:
    now = store.now_ms()
    ttl = timedelta(hours=1)
    old_event = (now - 10 * 3_600_000) * 1000
    store.write([item(1, old_event, None, 1, expire_at_ms(old_event, ttl, now))])
    store.write([item(2, old_event, None, 1, expire_at_ms(old_event, None, now))])
    pttl_1 = store.client.pttl(entity_key("p", "v", [1]))
    assert 3_600_000 < pttl_1 <= 2 * 3_600_000  # write time + ttl + one ttl of grace
    assert store.client.pttl(entity_key("p", "v", [2])) == -1  # no ttl: never expires


def test_redis_pipelined_batches_write_everything(store: RedisOnlineStore) -> None:
    result = store.write(item(e, 1, None, e) for e in range(1000))
    assert (result.offered, result.written) == (1000, 1000)
    keys = [entity_key("p", "v", [e]) for e in range(1000)]
    assert all(v is not None for v in store.read(keys))
    assert store.client.dbsize() == 1000


def test_redis_delete_removes_exactly_the_keys_given(store: RedisOnlineStore) -> None:
    store.write(item(e, 1, None, e) for e in range(1200))
    gone = [entity_key("p", "v", [e]) for e in range(0, 1200, 2)]
    unknown = entity_key("p", "v", [99_999])
    assert store.delete([*gone, unknown]) == 600  # in batches of 3 (the store's batch size)
    assert store.read(gone) == [None] * 600
    kept = store.read([entity_key("p", "v", [e]) for e in range(1, 1200, 2)])
    assert all(v is not None for v in kept)
    assert store.delete([]) == 0


def test_redis_read_of_a_dead_server_is_unavailable() -> None:
    """A refused connection is the store's own error, retryable, not redis-py's."""
    dead = RedisOnlineStore(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))
    with pytest.raises(OnlineStoreUnavailableError) as info:
        dead.read([entity_key("p", "v", [1])])
    assert info.value.retryable
