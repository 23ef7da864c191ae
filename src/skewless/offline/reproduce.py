"""What `reproduce` found: whether a training set was rebuilt identical to its manifest
(and its saved rows), and, when not, what differs and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["identical", "different", "not reproducible"]


@dataclass(frozen=True)
class ReproduceReport:
    target: str  # the saved set's name, or where the manifest came from
    outcome: Outcome
    # why it differs or cannot be rebuilt (inputs, erasures); identical: what changed
    # without changing the rows (a pinned file rewritten with the same rows)
    reasons: tuple[str, ...]
    rows_expected: int
    expected_digest: str
    rows_rebuilt: int | None = None  # None: not rebuilt
    rebuilt_digest: str | None = None
    rows_only_saved: int | None = None  # rows of the saved set the rebuild lacks
    rows_only_rebuilt: int | None = None  # rows of the rebuild the saved set lacks
    columns_differing: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return self.outcome == "identical"

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        if self.identical:
            head = (
                f"{self.target}: identical ({self.rows_expected:,} rows, digest "
                f"{self.expected_digest}), rebuilt in {self.seconds:.1f} s"
            )
            return [head, *(f"  note: {reason}" for reason in self.reasons)]
        head = f"{self.target}: {self.outcome}"
        out = [head]
        if self.rows_rebuilt is not None:
            out.append(
                f"  rows: {self.rows_expected:,} expected, {self.rows_rebuilt:,} rebuilt; "
                f"digest {self.expected_digest} expected, {self.rebuilt_digest} rebuilt"
            )
        if self.rows_only_saved is not None:
            out.append(
                f"  {self.rows_only_saved:,} saved rows are not in the rebuild, "
                f"{self.rows_only_rebuilt:,} rebuilt rows are not in the saved set"
            )
        if self.columns_differing:
            out.append(f"  columns that differ: {', '.join(self.columns_differing)}")
        out.extend(f"  why: {reason}" for reason in self.reasons)
        return out
