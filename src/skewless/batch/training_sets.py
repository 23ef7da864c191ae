"""Training sets that can be built again: retrieval with a manifest, as of a point in
history, saved as Delta tables, and reproduced.

`as_of` chooses the definitions and the data a retrieval uses:
- None: the definitions applied now, each input as it is now (pinned as read);
- a registry version N: the definitions applied in N, and the data as it was when N was
  last current (just before apply N+1, or now when N is the newest);
- a datetime T: the definitions applied at T, each Delta input at its version current at
  T, each file source's files modified at or before T;
- a Manifest: exactly what it pins (definitions, Delta versions, files).

A TrainingSets object is given what it needs (registry, Spark, paths), never the
FeatureStore facade.
"""

from __future__ import annotations

import numbers
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from skewless.batch.digest import digests
from skewless.batch.pins import PinProblem, check_pin, pin_input
from skewless.batch.retrieval import RetrievalJob, get_historical_features
from skewless.definitions import FeatureService
from skewless.definitions._base import NAME_RE
from skewless.errors import (
    AsOfError,
    ManifestError,
    SourceNotFoundError,
    TrainingSetErasedError,
    TrainingSetExistsError,
    TrainingSetNameError,
    TrainingSetNotFoundError,
    UnreadableSourceError,
)
from skewless.feature_request import service_refs
from skewless.offline.environment import code_state, environment
from skewless.offline.manifest import (
    DefinitionPin,
    InputPin,
    Manifest,
    ManifestDraft,
    SavedAs,
    saved_manifest,
)
from skewless.offline.reproduce import ReproduceReport
from skewless.registry import Registry, TrainingSetRecord
from skewless.serving.catalog import Catalog, load_catalog
from skewless.timeutil import iso_utc
from skewless.types import NULLABLE_PANDAS

if TYPE_CHECKING:
    from skewless.registry.base import ErasureRecord

AsOf = Manifest | int | datetime | None


@dataclass(frozen=True)
class TrainingSet:
    """A saved training set: where its rows are and the manifest that built them."""

    name: str
    location: str
    delta_version: int
    manifest: Manifest
    created_at: datetime
    description: str
    erasures: tuple[ErasureRecord, ...]
    _session: Callable[[], SparkSession]  # started when the rows are first read

    def to_spark(self) -> DataFrame:
        """The rows (a table has no row order), as the table holds them now: without
        the rows of any entity erased since."""
        return self._session().read.format("delta").load(self.location)

    def to_pandas(self) -> pd.DataFrame:
        """The rows with the training set's dtypes (nullable integers and booleans);
        timestamps are UTC (a table does not keep the zone the entity rows had)."""
        frame: pd.DataFrame = self.to_spark().toArrow().to_pandas(types_mapper=NULLABLE_PANDAS.get)
        return frame


@dataclass(frozen=True)
class _Point:
    catalog: Catalog
    at: datetime | None  # the data as of then (None: now)
    manifest: Manifest | None


@dataclass(frozen=True)
class TrainingSets:
    project: str
    repo_path: Path
    registry: Registry
    session: Callable[[], SparkSession]  # Spark starts when first needed (not to list)
    offline_root: str  # saved sets' tables go under <offline_root>/<project>/training_sets

    @property
    def spark(self) -> SparkSession:
        return self.session()

    # --- building -----------------------------------------------------------------

    def build(
        self,
        entity_df: pd.DataFrame | DataFrame,
        features: Sequence[str] | FeatureService | str,
        *,
        full_feature_names: bool,
        timestamp_column: str,
        as_of: AsOf,
        current: Catalog,
        check_pins: bool = True,
    ) -> RetrievalJob:
        """A retrieval with its manifest, as of `as_of` (`current`: the catalog now).
        A manifest's pinned inputs are checked first (check_pins): a changed or missing
        one is an AsOfError naming it."""
        point = self._point(as_of, current)
        catalog = point.catalog
        request = catalog.compile(
            features, full_feature_names=full_feature_names, reserved=list(entity_df.columns)
        )
        requests = request.views
        if point.manifest is not None:
            pins = self._manifest_pins(point.manifest, [r.name for r in requests], check_pins)
        else:
            pins = {
                r.name: pin_input(self.spark, r.view, self.repo_path, point.at) for r in requests
            }
        service = _service_name(features, catalog)
        definitions = [_definition_pin(catalog, "feature_view", r.name) for r in requests]
        definitions += [
            _definition_pin(catalog, "on_demand_feature_view", r.name) for r in request.on_demand
        ]
        if service is not None:
            definitions.append(_definition_pin(catalog, "feature_service", service))
        java = str(self.spark.sparkContext._jvm.System.getProperty("java.version"))  # type: ignore[union-attr]
        draft = ManifestDraft(
            project=self.project,
            created_at=datetime.now(UTC),
            registry_version=catalog.registry_version,
            features=tuple(service_refs(features, catalog.services)),
            feature_service=service,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            definitions=tuple(definitions),
            inputs=tuple(pins[r.name] for r in requests),
            code=code_state(self.repo_path),
            environment=environment(self.repo_path, java),
        )
        return get_historical_features(
            self.spark,
            self.repo_path,
            entity_df,
            request,
            timestamp_column,
            pins=pins,
            draft=draft,
        )

    def _point(self, as_of: AsOf, current: Catalog) -> _Point:
        if as_of is None:
            return _Point(current, None, None)
        if isinstance(as_of, Manifest):
            if as_of.project != self.project:
                raise AsOfError(
                    f"the manifest is of project '{as_of.project}', this repo's is '{self.project}'"
                )
            if as_of.saved_as is not None:
                self._refuse_erased(as_of.saved_as.name)
            catalog = self._catalog_at(as_of.registry_version)
            for pin in as_of.definitions:
                record = catalog.records.get((pin.kind, pin.name))
                if record is None or record.data_hash != pin.data_hash:
                    raise AsOfError(
                        f"the registry no longer holds {pin.kind.replace('_', ' ')} "
                        f"'{pin.name}' v{pin.version} as the manifest pins it"
                    )
            return _Point(catalog, None, as_of)
        if isinstance(as_of, datetime):
            version = self.registry.version_at(as_of)
            if version == 0:
                raise AsOfError(f"nothing was applied at or before {iso_utc(as_of)}")
            return _Point(self._catalog_at(version), as_of, None)
        given: object = as_of  # numpy integers too, whatever the annotation says
        if isinstance(given, bool) or not isinstance(given, numbers.Integral):
            raise AsOfError(
                f"as_of must be a Manifest, a registry version or a datetime, not {given!r}"
            )
        as_of = int(given)
        newest = current.registry_version
        if not 1 <= as_of <= newest:
            raise AsOfError(f"registry version {as_of} does not exist (versions 1..{newest})")
        until: datetime | None = None
        later = [a for a in self.registry.applies() if a.registry_version == as_of + 1]
        if later:
            until = later[0].applied_at - timedelta(microseconds=1)
        return _Point(self._catalog_at(as_of), until, None)

    def _refuse_erased(self, name: str) -> None:
        """A saved set that lost entities to an erasure is never rebuilt: the rebuild
        would bring the erased entities' rows back from the sources."""
        record = self.registry.training_set(name)
        if record is not None and record.erasures:
            raise TrainingSetErasedError(
                name, "it is not rebuilt, since that would bring the erased entities back"
            )

    def _catalog_at(self, version: int) -> Catalog:
        catalog = load_catalog(self.registry, self.project, at=version)
        if not catalog.views:
            raise AsOfError(f"registry version {version} holds no feature view")
        return catalog

    def _manifest_pins(
        self, manifest: Manifest, views: list[str], check: bool
    ) -> dict[str, InputPin]:
        pins = {}
        for view in views:
            pin = manifest.input_of(view)
            if pin is None:
                raise AsOfError(f"the manifest pins no input of feature view '{view}'")
            pins[view] = pin
        if check:
            problems = [p for pin in pins.values() for p in check_pin(self.spark, pin)]
            if problems:
                raise AsOfError(
                    "the manifest's inputs are not as pinned: " + "; ".join(map(str, problems))
                )
        return pins

    # --- saving -------------------------------------------------------------------

    def table_location(self, name: str) -> str:
        """A new folder for a set's table: its name and a random suffix, so that two
        saves of one name at once never write into one table (the registry records one
        of them; the other's table is removed)."""
        root = f"{self.offline_root.rstrip('/')}/{self.project}/training_sets"
        return f"{root}/{name}-{uuid.uuid4().hex[:12]}"

    def save(self, name: str, job: RetrievalJob, description: str = "") -> TrainingSet:
        """Write the job's rows as a Delta table and record its manifest, completed from
        the rows as written. Saved sets never change: a name is saved once."""
        if not NAME_RE.match(name) or name.startswith("__"):
            raise TrainingSetNameError(
                name, "is not an identifier (letters, digits and _, not starting with a digit)"
            )
        if self.registry.training_set(name) is not None:
            raise TrainingSetExistsError(name)
        draft = job.draft
        if draft is None:
            raise ManifestError("this retrieval job", "it was built without a manifest")
        location = self.table_location(name)
        version = job.to_delta(location)
        try:
            rows = self.spark.read.format("delta").option("versionAsOf", version).load(location)
            found = job.digests(rows)
            manifest = draft.complete(
                found["entity"],
                found["result"],
                SavedAs(name=name, location=location, delta_version=version),
            )
            record = TrainingSetRecord(
                name=name,
                location=location,
                delta_version=version,
                manifest=manifest.model_dump(mode="json"),
                created_at=datetime.now(UTC),
                description=description,
            )
            self.registry.record_training_set(record)
        except BaseException:
            if "://" not in location:
                shutil.rmtree(location, ignore_errors=True)
            raise
        job.with_manifest(manifest)
        return self._training_set(record)

    def list(self) -> list[TrainingSet]:
        return [self._training_set(r) for r in self.registry.training_sets()]

    def get(self, name: str) -> TrainingSet:
        record = self.registry.training_set(name)
        if record is None:
            raise TrainingSetNotFoundError(name, [r.name for r in self.registry.training_sets()])
        return self._training_set(record)

    def _training_set(self, record: TrainingSetRecord) -> TrainingSet:
        return TrainingSet(
            name=record.name,
            location=record.location,
            delta_version=record.delta_version,
            manifest=saved_manifest(record),
            created_at=record.created_at,
            description=record.description,
            erasures=record.erasures,
            _session=self.session,
        )

    # --- reproducing --------------------------------------------------------------

    def rebuild(
        self,
        target: str | Manifest,
        current: Catalog,
        entity_df: pd.DataFrame | DataFrame | None = None,
    ) -> RetrievalJob:
        """The training set built again from what its manifest pins: a saved set's
        entity rows come from its table, an unsaved manifest's from `entity_df`. Pinned
        inputs are checked first (AsOfError when one changed or is gone)."""
        manifest, entity = self._target(target, entity_df)
        return self._rebuild(manifest, entity, current, check_pins=True)

    def _rebuild(
        self,
        manifest: Manifest,
        entity: pd.DataFrame | DataFrame,
        current: Catalog,
        *,
        check_pins: bool,
    ) -> RetrievalJob:
        return self.build(
            entity,
            list(manifest.features),
            full_feature_names=manifest.full_feature_names,
            timestamp_column=manifest.timestamp_column,
            as_of=manifest,
            current=current,
            check_pins=check_pins,
        )

    def _target(
        self, target: str | Manifest, entity_df: pd.DataFrame | DataFrame | None
    ) -> tuple[Manifest, pd.DataFrame | DataFrame]:
        if isinstance(target, str):
            self._refuse_erased(target)
            saved = self.get(target)
            rows = (
                self.spark.read.format("delta")
                .option("versionAsOf", saved.delta_version)
                .load(saved.location)
            )
            return saved.manifest, rows.select(*[f"`{c}`" for c in saved.manifest.entity_columns])
        if entity_df is not None:
            return target, entity_df
        if target.saved_as is not None:
            return self._target(target.saved_as.name, None)
        raise AsOfError(
            "this manifest is of a training set that was not saved: pass its entity rows"
        )

    def _reproduce_target(
        self, target: str | Manifest, entity_df: object, origin: str
    ) -> tuple[Manifest, TrainingSetRecord | None, str]:
        """(the manifest, the saved set's record if any, the name a report gives)."""
        if isinstance(target, str):
            record = self.registry.training_set(target)
            if record is None:
                raise TrainingSetNotFoundError(
                    target, [r.name for r in self.registry.training_sets()]
                )
            return saved_manifest(record), record, target
        if target.saved_as is not None:
            return target, self.registry.training_set(target.saved_as.name), origin
        return target, None, origin

    def reproduce(
        self,
        target: str | Manifest,
        current: Catalog,
        entity_df: pd.DataFrame | DataFrame | None = None,
        origin: str = "manifest",
    ) -> ReproduceReport:
        started = time.perf_counter()
        manifest, record, label = self._reproduce_target(target, entity_df, origin)

        def report(outcome: str, reasons: Sequence[str], **found: object) -> ReproduceReport:
            return ReproduceReport(
                target=label,
                outcome=outcome,  # type: ignore[arg-type]
                reasons=tuple(reasons),
                rows_expected=manifest.result.rows,
                expected_digest=manifest.result.digest,
                seconds=time.perf_counter() - started,
                **found,  # type: ignore[arg-type]
            )

        if record is not None and record.erasures:
            return report("not reproducible", [_erased(e) for e in record.erasures])
        problems: list[PinProblem] = [
            p for pin in manifest.inputs for p in check_pin(self.spark, pin)
        ]
        saved_pin = None
        if record is not None:
            saved_pin = InputPin(
                view="(saved rows)",
                format="delta",
                path=f"training set '{record.name}'",
                location=record.location,
                delta_version=record.delta_version,
            )
            problems += check_pin(self.spark, saved_pin)
        missing = [str(p) for p in problems if p.kind == "missing"]
        if missing:
            return report("not reproducible", missing)
        if entity_df is not None:
            entity = entity_df
        elif record is not None:
            _, entity = self._target(record.name, None)
        else:
            raise AsOfError(
                f"{label} is the manifest of a training set that was not saved: pass its "
                "entity rows (--entity-rows FILE)"
            )
        job = self._rebuild(manifest, entity, current, check_pins=False)
        try:
            rebuilt, found = job.result_digests()
        except (UnreadableSourceError, SourceNotFoundError) as exc:
            return report("not reproducible", [str(exc)])
        reasons = [str(p) for p in problems]
        if found["entity"].digest != manifest.entity.digest:
            reasons.append(
                f"the entity rows are not those the manifest pins ({found['entity'].rows:,} "
                f"rows, digest {found['entity'].digest}; pinned: {manifest.entity.rows:,}, "
                f"{manifest.entity.digest})"
            )
        result = found["result"]
        extra: dict[str, object] = {
            "rows_rebuilt": result.rows,
            "rebuilt_digest": result.digest,
        }
        if result.digest == manifest.result.digest and not reasons[len(problems) :]:
            # the same rows: a pinned file rewritten with the same rows (another
            # compression, say) is said, not counted as a difference
            return report("identical", reasons, **extra)
        if record is not None:
            saved = (
                self.spark.read.format("delta")
                .option("versionAsOf", record.delta_version)
                .load(record.location)
            )
            extra.update(_differences(saved, rebuilt.select(*[f"`{c}`" for c in saved.columns])))
        if not reasons:
            reasons.append(self._unexplained(manifest))
        return report("different", reasons, **extra)

    def _unexplained(self, manifest: Manifest) -> str:
        """Why rows differ when every pinned input and definition is as pinned: what
        differs in the environment, if anything."""
        java = str(self.spark.sparkContext._jvm.System.getProperty("java.version"))  # type: ignore[union-attr]
        now = environment(self.repo_path, java).model_dump()
        then = manifest.environment.model_dump()
        changed = [
            f"{key} {then[key]} -> {now[key]}"
            for key in then
            if key != "platform" and then[key] != now[key]
        ]
        if changed:
            return (
                "every pinned input and definition is as pinned; the environment differs: "
                + ", ".join(changed)
            )
        return (
            "every pinned input, definition and library version is as pinned: the rows "
            "differ for a reason skewless does not record (the platform, Spark settings)"
        )


def _differences(saved: DataFrame, rebuilt: DataFrame) -> dict[str, object]:
    columns = saved.columns
    a = digests(saved, {c: [c] for c in columns})
    b = digests(rebuilt, {c: [c] for c in columns})
    return {
        "rows_only_saved": saved.exceptAll(rebuilt).count(),
        "rows_only_rebuilt": rebuilt.exceptAll(saved).count(),
        "columns_differing": tuple(c for c in columns if a[c].digest != b[c].digest),
    }


def _erased(e: ErasureRecord) -> str:
    return (
        f"erased: {e.rows_removed:,} rows of {e.keys:,} entity keys of feature view "
        f"'{e.view}' were deleted on {iso_utc(e.erased_at)} (a right-to-erasure request)"
    )


def _service_name(features: Sequence[str] | FeatureService | str, catalog: Catalog) -> str | None:
    if isinstance(features, FeatureService):
        return features.name if features.name in catalog.services else None
    if isinstance(features, str) and ":" not in features:
        return features
    return None


def _definition_pin(catalog: Catalog, kind: str, name: str) -> DefinitionPin:
    record = catalog.records[(kind, name)]
    return DefinitionPin(
        kind=record.kind,
        name=record.name,
        version=record.version,
        data_version=record.data_version,
        data_hash=record.data_hash,
        metadata_hash=record.metadata_hash,
        registry_version=record.registry_version,
    )
