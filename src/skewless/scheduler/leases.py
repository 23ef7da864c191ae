"""Holding a view's lease while work runs: renewed by a heartbeat, waited for when busy.

A lease (registry: `acquire_lease`) names one holder and a fencing token. The heartbeat
renews it every third of its duration, so a run longer than the lease keeps it; a
holder that stops renewing (killed, or paused longer than the lease) loses it to the
next runner, and every write fenced by the old token is refused from then on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from skewless.errors import LeaseLostError
from skewless.registry import Lease, Registry
from skewless.scheduler.clock import Clock

log = logging.getLogger(__name__)


class HeldLease:
    """The lease as last renewed (the heartbeat replaces it; the token stays)."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease


@contextmanager
def renewed(
    registry: Registry,
    lease: Lease,
    ttl_s: float,
    clock: Clock,
    on_lost: Callable[[], None] | None = None,
) -> Iterator[HeldLease]:
    """`lease`, renewed every ttl_s / 3 until the block ends, then released. When another
    holder has taken it, `on_lost` runs (the runner cancels its Spark jobs: the new holder
    runs the interval, and this one's records would be refused anyway)."""
    held = HeldLease(lease)
    done = threading.Event()

    def beat() -> None:
        while not done.wait(ttl_s / 3):
            try:
                held.lease = registry.renew_lease(held.lease, ttl_s, clock.now())
            except LeaseLostError as exc:
                log.warning("%s", exc)  # the fenced writes refuse from now on
                if on_lost is not None:
                    on_lost()
                return
            except Exception:  # a busy registry: try again at the next beat
                log.exception("renewing %s", held.lease.name)

    heart = threading.Thread(target=beat, name=f"lease {lease.name}", daemon=True)
    heart.start()
    try:
        yield held
    finally:
        done.set()
        heart.join()
        registry.release_lease(held.lease)


def wait_for_lease(
    registry: Registry,
    name: str,
    *,
    holder: str,
    ttl_s: float,
    clock: Clock,
    stop: threading.Event,
    poll_s: float = 1.0,
) -> Lease | None:
    """The lease, once no other holder has it (None when `stop` is set first)."""
    told = False
    while True:
        lease = registry.acquire_lease(name, holder, ttl_s, clock.now())
        if lease is not None:
            return lease
        if not told:
            other = registry.lease(name)
            log.warning(
                "waiting for %s: held by %s", name, other.holder if other else "another runner"
            )
            told = True
        if clock.wait(poll_s, stop):
            return None
