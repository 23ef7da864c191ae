"""A feature view's history as plain data: its definition versions, each with a readable
diff to the one before, and its data versions (every materialization run), each tied to
the definition version it ran for.

Pure: computed from the registry's records (the stored spec dicts and run records), no
engine and no I/O beyond the registry reads.
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from skewless.errors import FeatureViewNotFoundError
from skewless.registry.base import MaterializationRecord, ObjectRecord, RegistryReader
from skewless.timeutil import from_micros

Event = Literal["added", "changed", "removed", "re-added"]
SHOWN_VALUE_CHARS = 60  # a longer value is shown by its start
_DURATION = TypeAdapter(timedelta)
_DURATION_FIELDS = ("ttl",)  # stored as ISO-8601 text, shown as a duration


@dataclass(frozen=True)
class FieldChange:
    """One difference between two versions of a spec. `path` names the field as the
    plan does: `ttl`, `source.path`, `schema[rating].dtype`."""

    path: str
    old: Any = None  # None when the field was added
    new: Any = None  # None when it was removed
    change: Literal["changed", "added", "removed"] = "changed"

    def __str__(self) -> str:
        match self.change:
            case "added":
                return f"{self.path}: added ({_shown(self.path, self.new)})"
            case "removed":
                return f"{self.path}: removed (was {_shown(self.path, self.old)})"
            case "changed":
                return (
                    f"{self.path}: {_shown(self.path, self.old)} -> {_shown(self.path, self.new)}"
                )


@dataclass(frozen=True)
class DefinitionVersion:
    """One recorded version of the view's definition."""

    version: int
    data_version: int
    applied_at: datetime
    registry_version: int
    data_hash: str
    metadata_hash: str
    removed: bool
    event: Event
    changes: tuple[FieldChange, ...]  # against the previous version; () for the first
    data_changed: bool  # its data hash differs from the previous version's
    # the first earlier live version with the same fingerprints (a rollback restores one)
    same_as: int | None = None


@dataclass(frozen=True)
class DataVersion:
    """One materialization run of the view: a version of its data."""

    run: int  # 1, 2, ... among this view's runs, oldest first
    kind: Literal["full", "incremental"]
    start: datetime | None  # event-time interval, inclusive; None: from the beginning
    end: datetime
    delta_path: str
    delta_version: int
    finished_at: datetime
    rows_read: int
    rows_written: int  # inserted + updated
    rows_inserted: int | None  # None: the run's record does not split rows_written
    rows_updated: int | None
    rows_rejected: int
    keys_written_online: int
    data_hash: str
    definition_version: int | None  # the definition version it ran for (None: unknown)


@dataclass(frozen=True)
class FeatureTable:
    """One Delta feature table of the view (one per data hash), as its runs left it."""

    data_hash: str
    delta_path: str
    last_delta_version: int
    runs: int
    definition_versions: tuple[int, ...]  # the versions with this data hash


@dataclass(frozen=True)
class ViewHistory:
    view: str
    definitions: tuple[DefinitionVersion, ...]  # oldest first
    runs: tuple[DataVersion, ...]  # oldest first

    @property
    def current(self) -> DefinitionVersion | None:
        """The live version (None when the view is removed)."""
        last = self.definitions[-1] if self.definitions else None
        return None if last is None or last.removed else last

    @property
    def tables(self) -> list[FeatureTable]:
        """Each feature table the runs wrote, in the order first written."""
        found: dict[str, list[DataVersion]] = {}
        for run in self.runs:
            found.setdefault(run.data_hash, []).append(run)
        return [
            FeatureTable(
                data_hash=data_hash,
                delta_path=runs[-1].delta_path,
                last_delta_version=max(r.delta_version for r in runs),
                runs=len(runs),
                definition_versions=tuple(
                    d.version
                    for d in self.definitions
                    if d.data_hash == data_hash and not d.removed
                ),
            )
            for data_hash, runs in found.items()
        ]


def view_history(registry: RegistryReader, view: str) -> ViewHistory:
    """The history of feature view `view` (a removed view's too). Raises
    FeatureViewNotFoundError when no version of it was ever applied."""
    records = registry.history("feature_view", view)
    if not records:
        known = [r.name for r in registry.current("feature_view")]
        raise FeatureViewNotFoundError(view, known)
    definitions = definition_versions(records)
    runs = tuple(
        _data_version(i, run, definitions)
        for i, run in enumerate(registry.materializations(view), start=1)
    )
    return ViewHistory(view, definitions, runs)


def definition_versions(records: list[ObjectRecord]) -> tuple[DefinitionVersion, ...]:
    """The versions of one object, oldest first, each compared with the one before (a
    removal record holds the spec it removed)."""
    out: list[DefinitionVersion] = []
    previous: ObjectRecord | None = None
    for record in records:
        if previous is None:
            event: Event = "added"
        elif record.removed:
            event = "removed"
        else:
            event = "re-added" if previous.removed else "changed"
        changes = (
            () if previous is None or record.removed else spec_changes(previous.spec, record.spec)
        )
        out.append(
            DefinitionVersion(
                version=record.version,
                data_version=record.data_version,
                applied_at=record.applied_at,
                registry_version=record.registry_version,
                data_hash=record.data_hash,
                metadata_hash=record.metadata_hash,
                removed=record.removed,
                event=event,
                changes=changes,
                data_changed=previous is not None and previous.data_hash != record.data_hash,
                same_as=_same_as(record, out),
            )
        )
        previous = record
    return tuple(out)


def _same_as(record: ObjectRecord, earlier: list[DefinitionVersion]) -> int | None:
    if record.removed:
        return None
    fingerprints = (record.data_hash, record.metadata_hash)
    same = [
        d.version
        for d in earlier
        if not d.removed and (d.data_hash, d.metadata_hash) == fingerprints
    ]
    return same[0] if same else None


def spec_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Every field that differs between two stored specs, in field order: values that
    changed, fields added and removed. Lists of named items (a view's schema, its
    entities, a service's views) are compared item by item, by name."""
    return tuple(_compare(old, new, ""))


def _label(key: str) -> str:
    return "schema" if key == "schema_" else key


def _item_key(items: list[Any]) -> str | None:
    """The key naming each item of a list of dicts (`name`, or a service's `view`)."""
    for key in ("name", "view"):
        if items and all(isinstance(i, dict) and isinstance(i.get(key), str) for i in items):
            return key
    return None


def _compare(old: Any, new: Any, path: str) -> list[FieldChange]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{_label(key)}" if path else _label(key)
            if key not in old:
                out.append(FieldChange(sub, new=new[key], change="added"))
            elif key not in new:
                out.append(FieldChange(sub, old=old[key], change="removed"))
            else:
                out += _compare(old[key], new[key], sub)
        return out
    if isinstance(old, list) and isinstance(new, list):
        key = _item_key(old + new)
        if key is not None:
            return _compare_named(old, new, path, key)
    return [FieldChange(path, old, new)]


def _compare_named(old: list[Any], new: list[Any], path: str, key: str) -> list[FieldChange]:
    before = {item[key]: item for item in old}
    after = {item[key]: item for item in new}
    out: list[FieldChange] = []
    for name, item in before.items():
        sub = f"{path}[{name}]"
        if name not in after:
            out.append(FieldChange(sub, old=item, change="removed"))
        else:
            out += _compare(item, after[name], sub)
    out += [
        FieldChange(f"{path}[{name}]", new=item, change="added")
        for name, item in after.items()
        if name not in before
    ]
    kept_before = [n for n in before if n in after]
    kept_after = [n for n in after if n in before]
    if kept_before != kept_after:
        out.append(FieldChange(f"{path} order", kept_before, kept_after))
    return out


def _shown(path: str, value: Any) -> str:
    """A value as the diff shows it: JSON, a ttl as `1d 3h`, clipped."""
    if path in _DURATION_FIELDS and value is None:
        return "none"  # no expiry
    if path in _DURATION_FIELDS and isinstance(value, str):
        with suppress(ValidationError):  # shown as stored
            value = _DURATION.validate_python(value)
    if isinstance(value, timedelta):
        text = _duration(value)
    elif isinstance(value, dict) and isinstance(value.get("dtype"), str):
        text = value["dtype"]  # a schema field: its type says what it is
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[: SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _duration(span: timedelta) -> str:
    """`1d 3h`, `2h 30m`, `45s`: a ttl as people write it."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    micros = span.microseconds
    if micros or not parts:
        parts.append(f"{micros}us" if micros else "0s")
    return " ".join(parts)


def _data_version(
    run: int, record: MaterializationRecord, definitions: tuple[DefinitionVersion, ...]
) -> DataVersion:
    return DataVersion(
        run=run,
        kind=record.kind,
        start=None if record.start_us is None else from_micros(record.start_us),
        end=from_micros(record.end_us),
        delta_path=record.delta_path,
        delta_version=record.delta_version,
        finished_at=record.finished_at,
        rows_read=record.rows_read,
        rows_written=record.rows_written_offline,
        rows_inserted=record.rows_inserted_offline,
        rows_updated=record.rows_updated_offline,
        rows_rejected=record.rows_rejected,
        keys_written_online=record.keys_written_online,
        data_hash=record.data_hash,
        definition_version=_ran_for(record, definitions),
    )


def _ran_for(
    record: MaterializationRecord, definitions: tuple[DefinitionVersion, ...]
) -> int | None:
    """The definition version a run ran for: the newest live version with the run's data
    hash applied before the run finished (several versions share a data hash when only
    metadata changed, or after a rollback)."""
    same = [d for d in definitions if d.data_hash == record.data_hash and not d.removed]
    before = [d for d in same if d.applied_at <= record.finished_at]
    chosen = before or same
    return chosen[-1].version if chosen else None
