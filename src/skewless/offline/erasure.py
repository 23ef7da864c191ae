"""Erasure and vacuum as data: the keys of a right-to-erasure request, what forgetting
them did, what a vacuum did, and which saved training sets pin which Delta versions.

No Spark here: batch/erasure.py runs the deletions and vacuums and returns these
reports. The keys are read with pandas (CSV) and pyarrow (Parquet).
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skewless.definitions import FeatureView
from skewless.errors import ErasureKeysError, FeatureViewNotFoundError, clip
from skewless.offline.manifest import saved_manifest
from skewless.registry.base import RegistryReader, TrainingSetRecord
from skewless.types import DType

# Delta's default retention of removed files (delta.deletedFileRetentionDuration).
DELTA_RETENTION_HOURS = 168.0

KeysInput = pd.DataFrame | str | Path


# --- the keys of a request -------------------------------------------------------------


@dataclass(frozen=True)
class EntityKeys:
    """The entities to forget: one tuple of join-key values per entity, in the view's
    join-key order, typed as the registry records the keys (int32 and int64 as int)."""

    view: str
    origin: str  # the file, or "keys dataframe"
    columns: tuple[str, ...]
    dtypes: tuple[DType | None, ...]  # None: the registry records no type for the key
    rows: tuple[tuple[Any, ...], ...]  # distinct, in the order first given
    given: int  # rows given, duplicates included


def erasable_view(registry: RegistryReader, name: str) -> FeatureView:
    """The view called `name` as last applied; a removed view's last version, since its
    tables and online values may still hold the entities."""
    record = registry.get("feature_view", name)
    if record is None:
        history = registry.history("feature_view", name)
        record = history[-1] if history else None
    view = None if record is None else record.definition()
    if not isinstance(view, FeatureView):
        raise FeatureViewNotFoundError(name, [r.name for r in registry.current("feature_view")])
    return view


def read_keys(view: FeatureView, keys: KeysInput) -> EntityKeys:
    """The entities `keys` names: a dataframe, or a CSV or Parquet file, whose columns are
    exactly the view's join keys. Values are checked against the keys' recorded types (a
    CSV file's text is parsed: integers, true/false); a null, a value of another type
    and a file that cannot be read are an ErasureKeysError naming the file, the key and
    the first bad value. Duplicate rows are allowed."""
    if isinstance(keys, pd.DataFrame):
        origin = "keys dataframe"
        columns = {str(c): keys[c].tolist() for c in keys.columns}
        return _typed(view, origin, columns, len(keys), from_text=False, label=_row)
    path = Path(keys)
    origin = str(keys)
    if not path.exists():
        raise ErasureKeysError(origin, "no such file")
    if path.is_dir():
        raise ErasureKeysError(origin, "is a folder: give one CSV or Parquet file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _typed(view, origin, *_read_csv(path, origin), from_text=True, label=_line)
    if suffix in (".parquet", ".pq"):
        return _typed(view, origin, *_read_parquet(path, origin), from_text=False, label=_row)
    raise ErasureKeysError(origin, "is neither a .csv nor a .parquet file")


def _read_csv(path: Path, origin: str) -> tuple[dict[str, list[Any]], int]:
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig"
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ErasureKeysError(origin, f"is not a readable CSV file: {clip(first)}") from None
    return {str(c): frame[c].tolist() for c in frame.columns}, len(frame)


def _read_parquet(path: Path, origin: str) -> tuple[dict[str, list[Any]], int]:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ErasureKeysError(origin, f"is not a readable Parquet file: {clip(first)}") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}, table.num_rows


def _line(i: int) -> str:
    return f"line {i + 2}"  # the header is line 1


def _row(i: int) -> str:
    return f"row {i}"


class _BadValueError(Exception):
    pass


_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _shown(value: Any) -> str:
    return clip(repr(value), 60)


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _integer(value: Any, from_text: bool, *, name: str) -> int:
    if from_text:
        text = str(value).strip()
        if not _INTEGER.fullmatch(text):
            raise _BadValueError(f"{_shown(value)} is not an integer")
        number = int(text)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)  # pandas holds an integer column with a null as floats
    elif isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _BadValueError(f"{_shown(value)} is a {type(value).__name__}, not an integer")
    else:
        number = int(value)
    low, high = _INT_RANGES[name]
    if not low <= number <= high:
        raise _BadValueError(f"{number} is outside the range of {name}")
    return number


def _boolean(value: Any, from_text: bool) -> bool:
    text = str(value).strip().lower()
    if from_text and text in ("true", "false"):
        return text == "true"
    if not from_text and isinstance(value, bool):
        return value
    raise _BadValueError(f"{_shown(value)} is not true or false")


def _bytes(value: Any, from_text: bool) -> bytes:
    if from_text:
        raise _BadValueError("a bytes key cannot be written in CSV: give the keys as Parquet")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise _BadValueError(f"{_shown(value)} is a {type(value).__name__}, not bytes")


def _string(value: Any, from_text: bool) -> str:
    if isinstance(value, str):
        return value
    raise _BadValueError(f"{_shown(value)} is a {type(value).__name__}, not a string")


def _untyped(value: Any, from_text: bool) -> Any:
    """A key without a recorded type: what the key encoding takes, as given."""
    if isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    raise _BadValueError(
        f"{_shown(value)} is a {type(value).__name__}: a key is an int, str, bytes or bool"
    )


_CONVERTERS: dict[str, Callable[[Any, bool], Any]] = {
    "int32": partial(_integer, name="int32"),
    "int64": partial(_integer, name="int64"),
    "bool": _boolean,
    "bytes": _bytes,
    "string": _string,
}


def _convert(value: Any, dtype: DType | None, from_text: bool) -> Any:
    """`value` as the key encoding takes it for a key of type `dtype`, or _BadValueError."""
    if _is_null(value) or (from_text and value == ""):
        raise _BadValueError("is empty: a null key names no entity")
    convert = _untyped if dtype is None else _CONVERTERS.get(dtype.name, _untyped)
    return convert(value, from_text)


def _typed(
    view: FeatureView,
    origin: str,
    columns: Mapping[str, Sequence[Any]],
    rows: int,
    *,
    from_text: bool,
    label: Callable[[int], str],
) -> EntityKeys:
    keys = view.join_keys
    missing = [k for k in keys if k not in columns]
    extra = [c for c in columns if c not in keys]
    if missing or extra:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"extra {extra}"] if extra else []
        raise ErasureKeysError(
            origin,
            f"the columns must be exactly the join keys of feature view '{view.name}' "
            f"({', '.join(keys)}): " + ", ".join(parts),
            missing=missing,
            extra=extra,
        )
    if rows == 0:
        raise ErasureKeysError(origin, "holds no keys")
    declared = {f.name: f.dtype for f in view.key_fields}
    dtypes = tuple(declared.get(k) for k in keys)
    converted: list[list[Any]] = []
    problems: list[str] = []
    for key, dtype in zip(keys, dtypes, strict=True):
        values: list[Any] = []
        bad: list[tuple[int, str]] = []
        for i, value in enumerate(columns[key]):
            try:
                values.append(_convert(value, dtype, from_text))
            except _BadValueError as exc:
                bad.append((i, str(exc)))
        if bad:
            typed = "" if dtype is None else f" ({dtype})"
            first_row, reason = bad[0]
            problems.append(
                f"join key '{key}'{typed}: {len(bad)} bad value(s), the first at "
                f"{label(first_row)}: {reason}"
            )
        converted.append(values)
    if problems:
        raise ErasureKeysError(origin, "; ".join(problems))
    distinct = tuple(dict.fromkeys(zip(*converted, strict=True)))
    return EntityKeys(view.name, origin, tuple(keys), dtypes, distinct, rows)


# --- what forgetting did ------------------------------------------------------------------

TableKind = Literal["feature table", "training set"]


@dataclass(frozen=True)
class TableErasure:
    """The deletion from one Delta table."""

    kind: TableKind
    name: str  # a feature table's definition (data hash), a training set's name
    location: str
    rows_removed: int
    delta_version: int  # the table's version after the deletion (unchanged: none removed)


@dataclass(frozen=True)
class OnlineErasure:
    keys: int  # online keys deleted, one per entity
    removed: int  # of them, how many the store held
    skipped: str | None = None  # why the online store was not changed


@dataclass(frozen=True)
class ErasureReport:
    view: str
    source: str  # the view's source, as its definition names it
    keys_given: int  # rows of the request, duplicates included
    keys: int  # distinct entities
    feature_tables: tuple[TableErasure, ...]
    online: OnlineErasure
    training_sets: tuple[TableErasure, ...]  # every saved set whose manifest has the view
    # saved sets this run marked erased: each one changed, and any whose earlier
    # deletion an interrupted run had not recorded yet
    marked: tuple[str, ...]
    steps: tuple[str, ...]  # what ran, in order

    @property
    def rows_removed(self) -> int:
        return sum(t.rows_removed for t in (*self.feature_tables, *self.training_sets))

    @property
    def changed_sets(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.training_sets if t.rows_removed)

    def notes(self) -> list[str]:
        """What the erasure did not do, in plain words."""
        notes = [
            f"The source of feature view '{self.view}' ({self.source}) was not changed: "
            "skewless does not own it. Erase these entities there too, or the next "
            "materialization writes them back.",
        ]
        sets = " ".join(f"`skewless vacuum {name} --retain-hours 0`" for name in self.changed_sets)
        notes.append(
            "Earlier Delta versions of the tables still hold the erased rows in their files "
            f"until they are vacuumed: run `skewless vacuum {self.view} --retain-hours 0`"
            + (f", then {sets}" if sets else "")
            + " (or Delta's VACUUM with a retention of 0 hours)."
        )
        if self.online.skipped:
            notes.append(f"The online store was not changed: {self.online.skipped}.")
        if self.changed_sets:
            notes.append(
                "Saved training sets marked erased (reproduce reports them as not "
                f"reproducible: erased): {', '.join(self.changed_sets)}."
            )
        return notes


# --- what pins a table version -------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """A saved training set's claim on one version of one Delta table."""

    training_set: str
    location: str
    delta_version: int
    what: str  # "its rows", or the input it read


def pins(training_sets: Iterable[TrainingSetRecord]) -> list[Pin]:
    """The versions the saved sets that are not erased pin: each one's own table at the
    version saved, and every Delta input of its manifest at the version read. An erased
    set pins nothing: it can no longer be reproduced."""
    found: list[Pin] = []
    for record in training_sets:
        if record.erasures:
            continue
        found.append(Pin(record.name, record.location, record.delta_version, "its rows"))
        for pin in saved_manifest(record).inputs:
            if pin.delta_version is not None:
                what = f"the input {pin.shown} of feature view '{pin.view}'"
                found.append(Pin(record.name, pin.location, pin.delta_version, what))
    return found


def normalize_location(location: str) -> str:
    """A table's location for comparisons: a local path absolute and without links, a
    URI without a trailing slash."""
    if location.startswith("file:"):
        location = "/" + location[len("file:") :].lstrip("/")
    if "://" in location:
        return location.rstrip("/")
    return os.path.realpath(location)


def same_location(a: str, b: str) -> bool:
    return normalize_location(a) == normalize_location(b)


# Operations that add files or change metadata only: a version before them stays whole.
_KEEPS_FILES = frozenset(
    {
        "VACUUM START",
        "VACUUM END",
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "ADD COLUMNS",
        "CHANGE COLUMN",
        "ADD CONSTRAINT",
        "DROP CONSTRAINT",
    }
)
# A MERGE that removes no file (nor a file's deletion vector) only added files.
_MERGE_REMOVALS = (
    "numTargetFilesRemoved",
    "numTargetDeletionVectorsRemoved",
    "numTargetDeletionVectorsUpdated",
)


@dataclass(frozen=True)
class Commit:
    """One version of a Delta table, as its history tells it."""

    version: int
    timestamp_us: int
    operation: str
    parameters: Mapping[str, str]
    metrics: Mapping[str, str]
    user_metadata: str | None = None

    @property
    def removes_files(self) -> bool:
        """Whether the commit may have removed files (or deletion vectors) that the
        version before it reads: what a vacuum later deletes. Unknown operations count
        as removing."""
        if self.operation in _KEEPS_FILES:
            return False
        if self.operation in ("WRITE", "STREAMING UPDATE"):
            return self.parameters.get("mode") != "Append"
        if self.operation == "MERGE":
            return any(self.metrics.get(m, "1") != "0" for m in _MERGE_REMOVALS)
        return True


# A vacuum starts a little after the check that allows it: a file removed up to this long
# before the cutoff counts as deleted.
VACUUM_CLOCK_MARGIN_US = 10 * 60 * 1_000_000


def broken_pins(table_pins: Iterable[Pin], commits: Sequence[Commit], cutoff_us: int) -> list[Pin]:
    """The pins (all on one table) whose version a vacuum deleting the files removed
    before `cutoff_us` would make unreadable: a later commit removed files before the
    cutoff. A version whose later commits the history does not show counts as broken."""
    if not commits:
        return []
    by_version = {c.version: c for c in commits}
    current = max(by_version)
    broken = []
    for pin in table_pins:
        if pin.delta_version >= current:
            continue
        later = [by_version.get(v) for v in range(pin.delta_version + 1, current + 1)]
        if any(
            c is None or (c.removes_files and c.timestamp_us < cutoff_us + VACUUM_CLOCK_MARGIN_US)
            for c in later
        ):
            broken.append(pin)
    return broken


# --- what a vacuum did -----------------------------------------------------------------

VacuumKind = Literal["feature view", "training set", "path"]


@dataclass(frozen=True)
class TableVacuum:
    location: str
    files_deleted: int | None  # None: Delta did not report it
    broken: tuple[Pin, ...] = ()  # pins a forced vacuum broke


@dataclass(frozen=True)
class VacuumReport:
    target: str
    kind: VacuumKind
    retain_hours: float
    forced: bool
    tables: tuple[TableVacuum, ...]

    @property
    def broken_sets(self) -> tuple[str, ...]:
        return tuple(sorted({p.training_set for t in self.tables for p in t.broken}))

    def notes(self) -> list[str]:
        notes = []
        if not self.tables:
            notes.append(f"{self.kind} '{self.target}' has no Delta table: nothing to vacuum.")
        if self.retain_hours < DELTA_RETENTION_HOURS:
            notes.append(
                f"The retention of {self.retain_hours:g} hours is below Delta's default of "
                f"{DELTA_RETENTION_HOURS:g}: Delta's retention check was turned off for this "
                "vacuum only. A write to these tables running at the same time could lose "
                "its files."
            )
        if self.broken_sets:
            notes.append(
                "Forced: these saved training sets pinned versions whose files were deleted "
                f"and can no longer be reproduced: {', '.join(self.broken_sets)}."
            )
        return notes
