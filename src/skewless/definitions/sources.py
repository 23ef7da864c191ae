"""Batch sources: where a feature view's rows come from.

Paths may be relative: they resolve against the feature repo's folder, so a repo can move
without its definitions (or their fingerprints) changing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field as PydanticField
from pydantic import field_validator

from skewless.definitions._base import Definition, check_name


class _SourceBase(Definition):
    _positional: ClassVar[str] = "path"
    _kind: ClassVar[str] = "source"

    path: str
    timestamp_field: str
    created_timestamp_column: str | None = None
    name: str = ""
    description: str = ""
    tags: dict[str, str] = {}
    owner: str = ""

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("path is empty")
        return v

    @field_validator("timestamp_field", "created_timestamp_column")
    @classmethod
    def _columns(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v, "column")

    def resolve(self, repo_path: Path) -> str:
        """The absolute location of the data (URIs such as s3a:// are kept as they are)."""
        if "://" in self.path:
            return self.path
        p = Path(self.path)
        return str(p if p.is_absolute() else (repo_path / p).resolve())

    @property
    def label(self) -> str:
        return self.name or self.path


class FileSource(_SourceBase):
    """Parquet or CSV files (a file or a folder of files)."""

    type: Literal["file"] = "file"
    file_format: Literal["parquet", "csv"] = "parquet"


class DeltaSource(_SourceBase):
    """A Delta Lake table, read through delta-spark."""

    type: Literal["delta"] = "delta"


Source = Annotated[FileSource | DeltaSource, PydanticField(discriminator="type")]
