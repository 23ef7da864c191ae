"""The skewless error tree.

Every error names the thing that is wrong (a file, an object, a field, a value) in
structured attributes as well as in its message, and says whether retrying the same
call can succeed (`retryable`). Callers decide retries by type, never by message text.
No transport (gRPC, HTTP) concern lives here: adapters map these types to status codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from datetime import datetime


class SkewlessError(Exception):
    """Base of every error skewless raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# How much of a client-supplied text (a name, a value) an error message shows.
SHOWN_CHARS = 200


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` as an error message shows it: whole up to `limit` characters, else its
    start and its length. Text a caller sent (names, values) goes through here, so a
    message stays small, and fits a gRPC status, whatever was sent."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text)} characters)"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `name`, for "did you mean" hints."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.5)
    return matches[0] if matches else None


def _hint(name: str, candidates: Iterable[str]) -> str:
    # a name far longer than any definition's is close to none (and slow to compare)
    best = closest(name, candidates) if len(name) <= SHOWN_CHARS else None
    return f" Did you mean '{best}'?" if best else ""


# --- configuration and definitions ---------------------------------------------------


class ConfigError(SkewlessError):
    """feature_store.yaml (or an environment override) is invalid.

    `problems` lists every problem found, each "field: what is wrong" (or a sentence about
    the whole file); the message is the file, then one problem per line."""

    def __init__(self, path: str, detail: str | Sequence[str]) -> None:
        self.path = path
        self.problems: tuple[str, ...] = (detail,) if isinstance(detail, str) else tuple(detail)
        self.detail = "\n".join(self.problems)
        if len(self.problems) == 1:
            message = f"{path}: {self.problems[0]}"
        else:
            lines = "".join(f"\n  {p}" for p in self.problems)
            message = f"{path}: {len(self.problems)} problems:{lines}"
        super().__init__(message)


class DefinitionError(SkewlessError):
    """A definition is invalid. Names the file, the object and the field at fault."""

    def __init__(
        self,
        detail: str,
        *,
        object_kind: str | None = None,
        object_name: str | None = None,
        field: str | None = None,
        file: str | None = None,
    ) -> None:
        self.detail = detail
        self.object_kind = object_kind
        self.object_name = object_name
        self.field = field
        self.file = file
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.object_kind or self.object_name:
            where.append(f"{self.object_kind or 'object'} '{self.object_name or '?'}'")
        if self.field:
            where.append(f"field '{self.field}'")
        prefix = ": ".join(where)
        return f"{prefix}: {self.detail}" if prefix else self.detail

    def located(self, file: str) -> DefinitionError:
        """The same error, with the file it came from."""
        return DefinitionError(
            self.detail,
            object_kind=self.object_kind,
            object_name=self.object_name,
            field=self.field,
            file=file,
        )


class ExpressionTypeError(SkewlessError):
    """An expression does not type-check. Names the sub-expression at fault, as the
    Python text that builds it; the definition that holds it adds where it is."""

    def __init__(self, detail: str, expression: str) -> None:
        self.detail = detail
        self.expression = expression
        super().__init__(f"{expression}: {detail}")


class RepoLoadError(SkewlessError):
    """A file of the feature repo could not be imported."""

    def __init__(self, file: str, detail: str) -> None:
        super().__init__(f"{file}: {detail}")
        self.file = file
        self.detail = detail


# --- lookups -------------------------------------------------------------------------


class ObjectNotFoundError(SkewlessError):
    kind = "object"

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        self.known = sorted(set(known))
        super().__init__(f"unknown {self.kind} '{clip(name)}'.{_hint(name, self.known)}")


class FeatureViewNotFoundError(ObjectNotFoundError):
    kind = "feature view"


class FeatureServiceNotFoundError(ObjectNotFoundError):
    kind = "feature service"


class EntityNotFoundError(ObjectNotFoundError):
    kind = "entity"


class FeatureNotFoundError(SkewlessError):
    def __init__(self, view: str, feature: str, known: Iterable[str]) -> None:
        self.view = view
        self.feature = feature
        self.known = sorted(set(known))
        super().__init__(
            f"feature view '{view}' has no feature '{clip(feature)}'.{_hint(feature, self.known)}"
        )


class InvalidFeatureRefError(SkewlessError):
    def __init__(self, ref: str, detail: str) -> None:
        self.ref = ref
        super().__init__(f"invalid feature reference '{clip(ref)}': {detail}")


# --- data ----------------------------------------------------------------------------


class EntityDataFrameError(SkewlessError):
    """The entity dataframe given to get_historical_features is unusable."""

    def __init__(self, detail: str, *, column: str | None = None) -> None:
        self.column = column
        super().__init__(f"entity_df: {detail}")


class EntityRowsError(SkewlessError):
    """The entity rows of an online lookup are unusable: a row lacks a join key the
    requested features need, or holds a value the key cannot take. Names the row (its
    index) and the key."""

    def __init__(self, detail: str, *, row: int | None = None, key: str | None = None) -> None:
        self.row = row
        self.key = key
        super().__init__(detail if row is None else f"entity row {row}: {detail}")


class IncompatibleSchemaError(SkewlessError):
    """A source's columns or types do not match the declared schema."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"source {source} does not match its declared schema: " + "; ".join(problems)
        )


class RejectedRowsError(SkewlessError):
    """Rows of a source cannot be read as declared: CSV lines with more or fewer fields
    than their file's header (`malformed`: lines per file, `example`: the first such line
    of the first of those files), or values that do not parse as their declared type
    (`counts`: rows per column). Nothing was written."""

    # files listed by name in the message; the rest are counted
    SHOWN_FILES = 5

    def __init__(
        self,
        source: str,
        counts: dict[str, int],
        *,
        malformed: dict[str, int] | None = None,
        example: str | None = None,
    ) -> None:
        self.source = source
        self.counts = counts
        self.malformed = dict(malformed or {})
        self.example = example
        parts = []
        if self.malformed:
            files = sorted(self.malformed.items())
            listed = ", ".join(f"{f}: {n}" for f, n in files[: self.SHOWN_FILES])
            if len(files) > self.SHOWN_FILES:
                listed += f" and {len(files) - self.SHOWN_FILES} more file(s)"
            first = "" if example is None else f"; the first: {clip(example, 120)!r}"
            parts.append(
                f"{sum(self.malformed.values())} CSV line(s) with more or fewer fields than "
                f"the header ({listed}){first}"
            )
        if counts:
            detail = ", ".join(f"{col}: {n} row(s)" for col, n in sorted(counts.items()))
            parts.append(f"values that do not parse as the declared type ({detail})")
        super().__init__(f"source {source}: " + "; ".join(parts))


class SourceNotFoundError(SkewlessError):
    """A source's path does not exist. `path` is the path as the definition gives it (a
    relative path is relative to the repo folder)."""

    def __init__(self, path: str, view: str) -> None:
        self.path = path
        self.view = view
        super().__init__(f"feature view '{view}': source path {path} does not exist")


class UnreadableSourceError(SkewlessError):
    """A file of a source is empty, not a readable file of its format, or laid out unlike
    the source's other files (a CSV header). `file` is named as the definition names the
    source (its path, then the file's path inside it)."""

    def __init__(self, file: str, detail: str, *, view: str | None = None) -> None:
        self.file = file
        self.detail = detail
        self.view = view
        where = "" if view is None else f"feature view '{view}': "
        super().__init__(f"{where}source file {file} {detail}")

    def of_view(self, view: str) -> UnreadableSourceError:
        """The same error, naming the feature view whose source it is."""
        return UnreadableSourceError(self.file, self.detail, view=view)


# --- registry ------------------------------------------------------------------------


class RegistryConflictError(SkewlessError):
    """The registry moved on since the plan was made; plan again and re-apply."""

    retryable = True

    def __init__(self, expected: int, found: int) -> None:
        self.expected = expected
        self.found = found
        super().__init__(
            f"the registry changed since this plan was made (plan was based on registry version "
            f"{expected}, registry is now at version {found}); run plan again"
        )


class RegistryError(SkewlessError):
    """The registry store itself failed or holds something unreadable."""


class RegistryLockedError(RegistryError):
    """Another process held the registry's write lock for longer than the wait allowed."""

    retryable = True

    def __init__(self, path: str, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        super().__init__(
            f"registry {path} is locked: another process has held its write lock for over "
            f"{timeout_s:g} s (an apply or materialization still running?); retry when it is done"
        )


class LeaseLostError(SkewlessError):
    """A runner wrote under a lease that is no longer its own: another runner took the
    name (`current_holder`, `current_token`; None when no lease of that name is stored).
    Nothing was written. Not retryable: the work belongs to the current holder now."""

    def __init__(
        self,
        name: str,
        holder: str,
        token: int,
        current_holder: str | None,
        current_token: int | None,
    ) -> None:
        self.name = name
        self.holder = holder
        self.token = token
        self.current_holder = current_holder
        self.current_token = current_token
        if current_holder is None:
            now_held = f"no runner holds the lease on {name} any more"
        else:
            now_held = f"runner {current_holder} took the lease on {name} (token {current_token})"
        super().__init__(
            f"{now_held}; this runner's ({holder}, token {token}) work is not recorded"
        )


# --- training sets and manifests -----------------------------------------------------


class ManifestError(SkewlessError):
    """A file or text that should be a training set's manifest is not one."""

    def __init__(self, origin: str, detail: str) -> None:
        self.origin = origin
        super().__init__(f"{origin} is not a readable skewless manifest: {detail}")


class TrainingSetNotFoundError(ObjectNotFoundError):
    kind = "training set"


class TrainingSetExistsError(SkewlessError):
    """Saved training sets are immutable: a name is saved once."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"a training set named '{name}' is already saved (saved sets never change: "
            "choose another name)"
        )


class AsOfError(SkewlessError):
    """`as_of` names a point in history that cannot be restored as asked."""


class TrainingSetErasedError(SkewlessError):
    """A saved set lost rows to a right-to-erasure request: its manifest no longer
    describes its rows."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        super().__init__(f"training set '{name}' had entities erased (skewless forget): {what}")


class TrainingSetNameError(SkewlessError):
    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        super().__init__(f"training set name '{clip(name)}' {detail}")


# --- history and rollback ------------------------------------------------------------


class RegistryVersionNotFoundError(SkewlessError):
    """A registry version that the project's registry has not reached (or a negative
    one): there is no state "right after apply N" to read."""

    def __init__(self, version: int, latest: int) -> None:
        self.version = version
        self.latest = latest
        super().__init__(
            f"registry version {version} does not exist: the registry is at version {latest} "
            "(versions 0, before any apply, to the latest can be read)"
        )


class DefinitionVersionNotFoundError(SkewlessError):
    """An object has no recorded version of that number."""

    def __init__(self, kind: str, name: str, version: int, known: list[int]) -> None:
        self.kind = kind
        self.name = name
        self.version = version
        self.known = known
        shown = ", ".join(str(v) for v in known)
        super().__init__(f"{kind} '{name}' has no version {version} (its versions: {shown})")


class RollbackError(SkewlessError):
    """A rollback cannot be planned as asked: the version is already current, or what it
    needs (its entities, or its view) no longer exists."""

    def __init__(self, view: str, version: int, detail: str) -> None:
        self.view = view
        self.version = version
        self.detail = detail
        super().__init__(f"cannot roll feature view '{view}' back to v{version}: {detail}")


class LineageNotFoundError(ObjectNotFoundError):
    """A name that is none of a saved training set, a feature service or a feature view."""

    kind = "training set, feature service or feature view"

    def __init__(self, name: str, known: dict[str, list[str]]) -> None:
        self.by_kind = known
        super().__init__(name, [n for names in known.values() for n in names])
        listed = "; ".join(
            f"{what}: {', '.join(names) if names else '(none)'}" for what, names in known.items()
        )
        self.message = f"{self.message} Known {listed}."


# --- erasure and vacuum --------------------------------------------------------------


class ErasureKeysError(SkewlessError):
    """The keys of an erasure request (a file or a dataframe, `origin`) are unusable:
    missing or extra columns, no rows, or values that are not of their join key's type.
    Nothing was deleted."""

    def __init__(
        self,
        origin: str,
        detail: str,
        *,
        missing: Iterable[str] = (),
        extra: Iterable[str] = (),
    ) -> None:
        self.origin = origin
        self.detail = detail
        self.missing = tuple(missing)
        self.extra = tuple(extra)
        super().__init__(f"{origin}: {detail}; nothing was deleted")


class ErasureError(SkewlessError):
    """An erasure request cannot run as asked (a table it must change lacks a join key,
    or holds it as another type). Found before the first deletion: nothing was deleted."""

    def __init__(self, view: str, detail: str) -> None:
        self.view = view
        self.detail = detail
        super().__init__(
            f"cannot forget entities of feature view '{view}': {detail}; nothing was deleted"
        )


class ErasureIncompleteError(SkewlessError):
    """An erasure stopped part-way. `completed` lists the steps that ran, `step` the one
    that failed. Every step is idempotent: running the same request again completes it."""

    retryable = True

    def __init__(self, view: str, completed: Iterable[str], step: str, detail: str) -> None:
        self.view = view
        self.completed = tuple(completed)
        self.step = step
        self.detail = detail
        done = "; ".join(self.completed) if self.completed else "none"
        super().__init__(
            f"forgetting entities of feature view '{view}' stopped at {step}: {detail}. "
            f"Steps completed: {done}. Run the same request again to complete it"
        )


class VacuumTargetError(SkewlessError):
    """A vacuum target names no feature view, saved training set or Delta table, or
    names more than one."""

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        super().__init__(f"cannot vacuum '{clip(target)}': {detail}")


class VacuumRefusedError(SkewlessError):
    """A vacuum would delete files of a table version that saved training sets (not
    erased) pin. `pins` maps each such set to the version it pins; `force` overrides."""

    def __init__(self, location: str, pins: dict[str, int], retain_hours: float) -> None:
        self.location = location
        self.pins = dict(pins)
        self.retain_hours = retain_hours
        listed = ", ".join(f"'{name}' (version {v})" for name, v in sorted(self.pins.items()))
        super().__init__(
            f"refusing to vacuum {location} with a retention of {retain_hours:g} hours: it "
            f"would delete files of versions that saved training sets pin: {listed}. They "
            "could no longer be reproduced. Vacuum with a longer retention, or force it "
            "(--force, force=True) to break them"
        )


# --- mlflow --------------------------------------------------------------------------


class MlflowNotInstalledError(SkewlessError):
    """Logging to MLflow needs the optional extra `skewless[mlflow]`, which is not
    installed. `detail` is the import error."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"logging to MLflow needs the mlflow extra: pip install 'skewless[mlflow]' ({detail})"
        )


# --- runtime -------------------------------------------------------------------------


class NothingAppliedError(SkewlessError):
    def __init__(self, project: str) -> None:
        self.project = project
        super().__init__(
            f"project '{project}' has no applied definitions: run `skewless apply` first"
        )


class OnlineStoreUnavailableError(SkewlessError):
    """Redis did not answer (refused, timed out, loading, or past the call's deadline)."""

    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(f"the online store is unavailable: {detail}")


class ServerBusyError(SkewlessError):
    """The server used up a call's time before asking the online store: the server is
    busy, Redis is not at fault. Retrying (later, or on another server) can succeed."""

    retryable = True


class RequestTooLargeError(SkewlessError):
    """A call to the online server is over one of its limits (the `serving` section of
    feature_store.yaml). Names the limit's key, the call's size and the limit."""

    def __init__(self, size: int, what: str, key: str, limit: int) -> None:
        self.size = size
        self.key = key
        self.limit = limit
        super().__init__(
            f"request has {size} {what}; the limit is {key} = {limit} (split the request)"
        )


class ServerOverloadedError(SkewlessError):
    """The online server holds as many request bytes in flight as it may
    (serving.max_inflight_request_bytes); retry after a backoff."""

    retryable = True

    def __init__(self, size: int, held: int, limit: int) -> None:
        self.size = size
        self.held = held
        self.limit = limit
        super().__init__(
            f"the server is overloaded: {held} bytes of requests are in flight and this "
            f"one has {size}; the limit is serving.max_inflight_request_bytes = {limit} "
            "(retry after a backoff)"
        )


class UndecodableRequestError(SkewlessError):
    """The bytes of a call are not a message of the type it takes (garbage, or a string
    field that is not UTF-8)."""

    def __init__(self, message_type: str, size: int) -> None:
        self.message_type = message_type
        self.size = size
        super().__init__(f"the request ({size} bytes) is not a valid {message_type}")


class OnlineStoreNotConfiguredError(SkewlessError):
    def __init__(self) -> None:
        super().__init__(
            "online_store.url is not set: set it in feature_store.yaml or with "
            "SKEWLESS_ONLINE_STORE_URL"
        )


class SparkSetupError(SkewlessError):
    """Spark or its Delta jars could not be prepared."""


class BindError(SkewlessError):
    """A server could not listen on its address (in use, or not this machine's)."""

    def __init__(self, address: str, what: str, reason: str) -> None:
        super().__init__(f"could not listen on {address} for {what}: {reason}")
        self.address = address


# --- Feast names skewless does not have (skewless/feast_names.py) --------------------


class FeastImportError(SkewlessError, ImportError):
    """`from skewless import X` for a Feast name skewless does not have. An ImportError,
    so Python's import statement shows this message instead of "cannot import name"."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name


class FeastAttributeError(SkewlessError, AttributeError):
    """A Feast FeatureStore method skewless does not have; says what to use instead."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(detail)
        self.name = name


class FeastCommandError(SkewlessError):
    """A Feast CLI command skewless names differently or does not have."""

    def __init__(self, command: str, detail: str) -> None:
        super().__init__(detail)
        self.command = command


# --- teardown ----------------------------------------------------------------------------


class TeardownError(SkewlessError):
    """Teardown could not delete something of the project's offline data."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"teardown could not delete {path}: {reason} (the registry is kept: run "
            "`skewless teardown` again once that is fixed)"
        )


class TeardownRefusedError(SkewlessError):
    """Deleting a project's offline data would keep some of its locations (`kept`:
    location, why), so none of it is deleted: with the registry records gone, a later
    apply and materialize would write into a kept table again, stale rows and all."""

    def __init__(self, project: str, kept: Sequence[tuple[str, str]]) -> None:
        self.project = project
        self.kept = tuple(kept)
        listed = "; ".join(f"{location} ({why})" for location, why in self.kept)
        super().__init__(
            f"refusing to delete the offline data of project '{project}': teardown would "
            f"keep {listed}. Without their registry records, a later materialize would "
            "write into a kept table again, stale rows and all. Nothing was removed (the "
            "online keys neither). Deal with each location, then run `skewless teardown` "
            "again; without --yes (offline=False) teardown removes the online keys only"
        )


# --- HTTP/JSON serving (skewless/http/) ----------------------------------------------


class MalformedRequestError(SkewlessError):
    """The body of an HTTP call is not the JSON request it takes: not JSON, or a field of
    the wrong shape or kind. Names the field (None: the body as a whole)."""

    def __init__(self, field: str | None, detail: str) -> None:
        self.field = field
        where = "the request body" if field is None else f"request field '{clip(field)}'"
        super().__init__(f"{where}: {detail}")


class BackfillFailedError(SkewlessError):
    """A chunk of a backfill failed on every attempt; the chunks before it are done, and
    the same command resumes after them. Retryable: running it again retries the chunk."""

    retryable = True

    def __init__(
        self,
        view: str,
        start: datetime,
        end: datetime,
        *,
        attempts: int,
        error: str,
        done: int,
        left: int,
    ) -> None:
        self.view, self.start, self.end = view, start, end
        self.attempts, self.error, self.done, self.left = attempts, error, done, left
        super().__init__(
            f"backfill of {view!r}: the chunk {start.isoformat()} .. {end.isoformat()} "
            f"failed {attempts} time(s) ({error}); {done} chunk(s) done, {left} left: run "
            "the same command again to resume"
        )


class StatisticsNotFoundError(SkewlessError):
    """A side of a drift comparison, or a `stats` request, names data with no recorded
    statistics: a version committed with statistics off (or before they existed), a time
    before the first summarized version, or a view never materialized."""

    def __init__(self, view: str, wanted: str, known: Sequence[int]) -> None:
        self.view = view
        self.wanted = wanted
        self.known = list(known)
        shown = ", ".join(str(v) for v in known[-20:]) if known else "none"
        more = f" (the last 20 of {len(known)})" if len(known) > 20 else ""
        super().__init__(
            f"feature view '{view}' has no statistics for {wanted}: versions with "
            f"statistics: {shown}{more}; materialize it with statistics enabled"
        )


class DriftSideError(SkewlessError):
    """A side of a drift comparison that cannot be read as asked: not a version, a time,
    `latest`, `table[:V]` or a saved training set, or a training set without the view."""

    def __init__(self, side: str, value: str, detail: str) -> None:
        self.side = side
        self.value = value
        self.detail = detail
        super().__init__(f"drift {side} {clip(value)!r}: {detail}")


class SummaryError(SkewlessError):
    """Stored statistics that cannot be read or compared: a malformed summary, or two
    summaries of one feature binned over different edges."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        self.detail = detail
        super().__init__(f"{what}: {detail}")
