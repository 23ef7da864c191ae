"""The manifest of a training set: everything needed to say what built it and to build
it again exactly.

It pins the definitions (each view's and service's registry version and fingerprint),
the data (each Delta input's version; each file source's exact files with size,
modification time and content hash), the entity rows and the result (row counts and
content digests that do not depend on row order or partitioning), and the code and
environment (the feature repo's git commit, library versions, the lock file's hash).

A manifest is plain JSON (`to_json`, `from_json`): readable by people and by any tool,
never pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from skewless.errors import ManifestError

MANIFEST_FORMAT = 1


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FilePin(_Model):
    """One file of a file source, as it was read."""

    path: str  # as errors name it: the source's path as written, then the file inside it
    location: str  # absolute path
    size: int | None  # None: a file at a URI, pinned by name only
    mtime_ns: int | None
    sha256: str | None


class InputPin(_Model):
    """One input a training set read: a Delta table at a version, or a file source's
    files."""

    view: str  # the feature view that reads it
    format: Literal["parquet", "csv", "delta"]
    path: str  # as the definition writes it
    location: str  # resolved (absolute path or URI)
    delta_version: int | None = None  # Delta: the version read
    delta_committed_at: datetime | None = None  # Delta: when that version was committed
    files: tuple[FilePin, ...] | None = None  # files: exactly the files read

    @property
    def shown(self) -> str:
        if self.delta_version is not None:
            return f"{self.path} (Delta version {self.delta_version})"
        count = len(self.files or ())
        return f"{self.path} ({count} file{'s' if count != 1 else ''})"


class DefinitionPin(_Model):
    """One applied definition version a training set used."""

    kind: Literal["feature_view", "on_demand_feature_view", "feature_service"]
    name: str
    version: int
    data_version: int
    data_hash: str
    metadata_hash: str
    registry_version: int  # the apply that recorded this version


class RowsDigest(_Model):
    """Rows summarized: their columns (name and Spark type, in order), their number, and
    a digest of their content that does not depend on row order or partitioning (the
    same multiset of rows gives the same digest)."""

    columns: tuple[tuple[str, str], ...]
    rows: int
    digest: str


class CodeState(_Model):
    """The feature repo's code: its git commit and whether its tree had uncommitted
    changes (None when the repo is not in a git checkout)."""

    git_commit: str | None = None
    git_dirty: bool | None = None


class Environment(_Model):
    python: str
    skewless: str
    pyspark: str | None = None
    delta_spark: str | None = None
    pandas: str | None = None
    pyarrow: str | None = None
    java: str | None = None
    platform: str = ""
    lock_sha256: str | None = None  # uv.lock (or the lock file named by config), if found


class SavedAs(_Model):
    """Where a saved training set's rows are: a Delta table at a version."""

    name: str
    location: str
    delta_version: int


class Manifest(_Model):
    format: int = MANIFEST_FORMAT
    project: str
    created_at: datetime
    registry_version: int  # the registry version whose definitions were used
    features: tuple[str, ...]  # full refs, "view:feature", in request order
    feature_service: str | None = None  # when the features were asked as a service
    full_feature_names: bool = False
    timestamp_column: str
    definitions: tuple[DefinitionPin, ...]
    inputs: tuple[InputPin, ...]
    entity: RowsDigest  # the entity rows as given (their columns only)
    result: RowsDigest  # the training set: entity columns then features
    code: CodeState
    environment: Environment
    saved_as: SavedAs | None = None

    def to_json(self, *, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes, *, origin: str = "manifest") -> Manifest:
        """Parse a manifest; a file that is not one is a ManifestError naming `origin`."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(origin, f"not JSON ({exc})") from None
        return cls.of_data(data, origin=origin)

    @classmethod
    def of_data(cls, data: Any, *, origin: str = "manifest") -> Manifest:
        """A manifest from its JSON data (as the registry stores it). The format is
        checked first: a newer skewless's manifest may hold fields this one does not."""
        found = data.get("format") if isinstance(data, dict) else None
        if isinstance(found, int) and found > MANIFEST_FORMAT:
            raise ManifestError(
                origin,
                f"written in manifest format {found}; this skewless reads format "
                f"{MANIFEST_FORMAT}: upgrade skewless",
            )
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise ManifestError(origin, " ".join(first[:3])) from None

    def definition(self, kind: str, name: str) -> DefinitionPin | None:
        for pin in self.definitions:
            if pin.kind == kind and pin.name == name:
                return pin
        return None

    def input_of(self, view: str) -> InputPin | None:
        for pin in self.inputs:
            if pin.view == view:
                return pin
        return None

    @property
    def entity_columns(self) -> list[str]:
        return [name for name, _ in self.entity.columns]

    @property
    def views(self) -> list[str]:
        return [p.name for p in self.definitions if p.kind == "feature_view"]


@dataclass(frozen=True)
class ManifestDraft:
    """What is known of a training set's manifest before its rows are computed: all but
    the entity and result digests (and where it was saved)."""

    project: str
    created_at: datetime
    registry_version: int
    features: tuple[str, ...]
    feature_service: str | None
    full_feature_names: bool
    timestamp_column: str
    definitions: tuple[DefinitionPin, ...]
    inputs: tuple[InputPin, ...]
    code: CodeState
    environment: Environment

    def complete(
        self, entity: RowsDigest, result: RowsDigest, saved_as: SavedAs | None = None
    ) -> Manifest:
        return Manifest(
            project=self.project,
            created_at=self.created_at,
            registry_version=self.registry_version,
            features=self.features,
            feature_service=self.feature_service,
            full_feature_names=self.full_feature_names,
            timestamp_column=self.timestamp_column,
            definitions=self.definitions,
            inputs=self.inputs,
            entity=entity,
            result=result,
            code=self.code,
            environment=self.environment,
            saved_as=saved_as,
        )


class _Recorded(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def manifest(self) -> dict[str, Any]: ...


def saved_manifest(record: _Recorded) -> Manifest:
    """A saved set's manifest as the registry holds it (a ManifestError names the set
    when it is unreadable)."""
    return Manifest.of_data(record.manifest, origin=f"the manifest of training set '{record.name}'")
