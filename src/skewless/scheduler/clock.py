"""The scheduler's only source of time, so tests can drive a runner through days."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, UTC-aware."""
        ...

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait `seconds` or until `stop` is set; True when stopped."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(seconds, 0.0))
