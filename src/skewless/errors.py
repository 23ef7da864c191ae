"""The skewless error tree.

Every error names the thing that is wrong (a file, an object, a field, a value) in
structured attributes as well as in its message, and says whether retrying the same
call can succeed (`retryable`). Callers decide retries by type, never by message text.
No transport (gRPC, HTTP) concern lives here: adapters map these types to status codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SkewlessError(Exception):
    """Base of every error skewless raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `name`, for "did you mean" hints."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.5)
    return matches[0] if matches else None


def _hint(name: str, candidates: Iterable[str]) -> str:
    best = closest(name, candidates)
    return f" Did you mean '{best}'?" if best else ""


# --- configuration and definitions ---------------------------------------------------


class ConfigError(SkewlessError):
    """feature_store.yaml (or an environment override) is invalid."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


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
        super().__init__(f"unknown {self.kind} '{name}'.{_hint(name, self.known)}")


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
            f"feature view '{view}' has no feature '{feature}'.{_hint(feature, self.known)}"
        )


class InvalidFeatureRefError(SkewlessError):
    def __init__(self, ref: str, detail: str) -> None:
        self.ref = ref
        super().__init__(f"invalid feature reference '{ref}': {detail}")


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
    """Rows of a source could not be parsed into their declared types. Nothing was written."""

    def __init__(self, source: str, counts: dict[str, int]) -> None:
        self.source = source
        self.counts = counts
        detail = ", ".join(f"{col}: {n} row(s)" for col, n in sorted(counts.items()))
        super().__init__(
            f"source {source}: values that do not parse as the declared type ({detail})"
        )


class SourceNotFoundError(SkewlessError):
    def __init__(self, path: str, view: str) -> None:
        self.path = path
        self.view = view
        super().__init__(f"feature view '{view}': source path {path} does not exist")


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
