"""Logging a kind of server event at most once an interval, with the count of the ones
held back: what both transports (grpc/, http/) use for refusals and failures the operator
should hear about, never once per call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

LOG_INTERVAL_S: Final = 60.0


class LogThrottle:
    """One kind of event, logged at most once per `interval_s`: the first at once (with
    its traceback, if any), the ones after it within the interval as one line with their
    count and the latest message, when the interval is over (a timer on the running loop
    sends it, so a burst followed by silence is reported too)."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._level = level
        self._interval_s = interval_s
        self._clock = clock
        self._quiet_until = float("-inf")
        self._held = 0
        self._latest = ""
        self._timer: asyncio.TimerHandle | None = None

    @property
    def held(self) -> int:
        """Events counted but not logged yet."""
        return self._held

    def event(self, message: str, *, exc_info: bool = False) -> None:
        now = self._clock()
        if now >= self._quiet_until and not self._held:
            self._log.log(self._level, "%s", message, exc_info=exc_info)
            self._quiet_until = now + self._interval_s
            return
        self._held += 1
        self._latest = message
        if now >= self._quiet_until:  # the interval is over and the timer has not run yet
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a unit test): the next event or flush() logs
                return
            self._timer = loop.call_later(max(0.0, self._quiet_until - now), self.flush)

    def flush(self) -> None:
        """Log the events held, if any, as one line."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._held:
            return
        held, self._held = self._held, 0
        self._log.log(
            self._level,
            "%d more like this since the last report; the latest: %s",
            held,
            self._latest,
        )
        self._quiet_until = self._clock() + self._interval_s
