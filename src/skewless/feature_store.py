"""FeatureStore: the Python entry point over one feature repo.

It only wires the pieces together; the logic lives in repo.py, plan/, registry/,
batch/, materialize/ and serving/. Retrieval reads definitions from the registry (what
was applied: the same Catalog the server answers from), never from the repo's Python
files, so a training set always matches a recorded version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pandas as pd

from skewless.config import RepoConfig, load_config, resolve_path
from skewless.definitions import Entity, FeatureService, FeatureView, OnDemandFeatureView
from skewless.errors import (
    EntityNotFoundError,
    FeastAttributeError,
    FeatureServiceNotFoundError,
    FeatureViewNotFoundError,
    NothingAppliedError,
    ObjectNotFoundError,
    OnlineStoreNotConfiguredError,
    OnlineStoreUnavailableError,
    RegistryConflictError,
    RollbackError,
    TrainingSetErasedError,
    TrainingSetNotFoundError,
)
from skewless.feature_request import service_refs
from skewless.offline.drift import DataSide, StatisticsReader
from skewless.offline.lineage import Lineage, lineage
from skewless.offline.manifest import Manifest
from skewless.offline.reproduce import ReproduceReport
from skewless.plan import Plan, Rollback, apply_plan, check_sources, make_plan, plan_rollback
from skewless.registry import (
    MaterializationRecord,
    ObjectKind,
    ObjectRecord,
    Registry,
    open_registry,
)
from skewless.registry.history import ViewHistory, view_history
from skewless.repo import RepoContents, load_repo

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from skewless.batch.retrieval import RetrievalJob
    from skewless.batch.training_sets import TrainingSet, TrainingSets
    from skewless.materialize import Materializer
    from skewless.offline.erasure import ErasureReport, VacuumReport
    from skewless.offline.mlflow_run import LoggedTrainingSet
    from skewless.online.store import OnlineStore
    from skewless.registry import VersionStatistics
    from skewless.serving.catalog import Catalog
    from skewless.serving.plan import LookupPlan
    from skewless.serving.response import OnlineResponse
    from skewless.stats import DriftReport, Thresholds
    from skewless.teardown import Confirm, TeardownReport


__all__ = ["FeatureStore", "NothingAppliedError", "OnlineStoreNotConfiguredError"]


class FeatureStore:
    def __init__(
        self,
        repo_path: str | Path = ".",
        config: RepoConfig | None = None,
        fs_yaml_file: str | Path | None = None,
    ) -> None:
        """The store of the feature repo at `repo_path`, configured by its
        feature_store.yaml, by `fs_yaml_file` (Feast's name: another YAML file, relative
        to the repo folder) or by `config`."""
        if config is not None and fs_yaml_file is not None:
            raise TypeError("give config or fs_yaml_file, not both")
        self.repo_path = Path(repo_path).resolve()
        fs_yaml = None if fs_yaml_file is None else Path(fs_yaml_file)
        self.config = config or load_config(self.repo_path, fs_yaml)
        self.registry: Registry = open_registry(self.config, self.repo_path)
        self._spark: SparkSession | None = None
        self._online: OnlineStore | None = None
        # The applied definitions and their compiled lookups, reloaded when the registry
        # version changes (one cheap query instead of rebuilding every definition).
        self._catalog: Catalog | None = None

    @property
    def project(self) -> str:
        return self.config.project

    # --- definitions -----------------------------------------------------------------

    def load_repo(self) -> RepoContents:
        return load_repo(self.repo_path)

    def plan(self) -> Plan:
        """What `apply` would change: the repo's definitions against the registry."""
        contents = check_sources(self.load_repo(), self.repo_path)
        return make_plan(contents, self.registry, self.project)

    def apply(self, plan: Plan | None = None, *, retries: int = 3) -> tuple[Plan, int]:
        """Apply `plan` (or a fresh one). A given plan fails with RegistryConflictError if
        the registry moved on since it was made; a fresh plan is re-made and retried.
        Returns the plan applied and the registry version it produced."""
        if plan is not None:
            return plan, apply_plan(plan, self.registry)
        for attempt in range(retries + 1):
            fresh = self.plan()
            try:
                return fresh, apply_plan(fresh, self.registry)
            except RegistryConflictError:
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def refresh_registry(self) -> None:
        """Feast's call to see the latest `apply`. A no-op here: every read checks the
        registry's version and reloads the definitions when it moved."""

    if not TYPE_CHECKING:  # seen by Python only: mypy keeps refusing unknown attributes

        def __getattr__(self, name: str) -> Any:
            # A Feast method skewless lacks (store.push, ...) says what to use instead.
            from skewless.feast_names import STORE_METHODS, advice, missing_name  # noqa: PLC0415

            detail = advice(STORE_METHODS, name, missing_name(f"FeatureStore.{name}"))
            if detail is None:
                raise AttributeError(f"'FeatureStore' object has no attribute {name!r}")
            raise FeastAttributeError(name, detail)

    # --- registry reads ----------------------------------------------------------------

    def _records(self, kind: ObjectKind) -> list[ObjectRecord]:
        return self.registry.current(kind)

    def list_entities(self) -> list[Entity]:
        return [r.definition() for r in self._records("entity")]  # type: ignore[misc]

    def catalog(self) -> Catalog:
        """The applied views and services, as of the registry's current version."""
        from skewless.serving.catalog import load_catalog  # noqa: PLC0415

        version = self.registry.registry_version()
        if self._catalog is None or self._catalog.registry_version != version:
            self._catalog = load_catalog(self.registry, self.project)
        return self._catalog

    def list_feature_views(self) -> list[FeatureView]:
        return [r.definition() for r in self._records("feature_view")]  # type: ignore[misc]

    def list_feature_services(self) -> list[FeatureService]:
        return [r.definition() for r in self._records("feature_service")]  # type: ignore[misc]

    def get_feature_view(self, name: str) -> FeatureView:
        views = {v.name: v for v in self.list_feature_views()}
        if name not in views:
            raise FeatureViewNotFoundError(name, views)
        return views[name]

    def list_on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return [r.definition() for r in self._records("on_demand_feature_view")]  # type: ignore[misc]

    def get_on_demand_feature_view(self, name: str) -> OnDemandFeatureView:
        views = {v.name: v for v in self.list_on_demand_feature_views()}
        if name not in views:
            raise FeatureViewNotFoundError(name, views)
        return views[name]

    def get_feature_service(self, name: str) -> FeatureService:
        services = {s.name: s for s in self.list_feature_services()}
        if name not in services:
            raise FeatureServiceNotFoundError(name, services)
        return services[name]

    def get_entity(self, name: str) -> Entity:
        entities = {e.name: e for e in self.list_entities()}
        if name not in entities:
            raise EntityNotFoundError(name, entities)
        return entities[name]

    def describe(self, name: str) -> list[ObjectRecord]:
        """Every recorded version of the object called `name` (any kind)."""
        kinds: tuple[ObjectKind, ...] = (
            "feature_view",
            "on_demand_feature_view",
            "feature_service",
            "entity",
        )
        for kind in kinds:
            history = self.registry.history(kind, name)
            if history:
                return history
        known = [r.name for r in self.registry.current()]
        raise ObjectNotFoundError(name, known)

    # --- history ---------------------------------------------------------------------

    def history(self, view: str) -> ViewHistory:
        """Every definition version of feature view `view` (each with a readable diff to
        the one before) and every materialization run of it (its data versions)."""
        return view_history(self.registry, view)

    def plan_rollback(self, view: str, to_version: int) -> Rollback:
        """The plan that re-applies definition version `to_version` of `view` over the
        registry's current definitions (nothing is applied)."""
        return plan_rollback(self.registry, self.project, self.repo_path, view, to_version)

    def rollback(
        self, view: str, to_version: int, plan: Rollback | None = None
    ) -> tuple[Rollback, int]:
        """Re-apply definition version `to_version` of feature view `view` through plan and
        apply (`plan`: one made before, applied exactly). Returns the rollback (what needs
        re-materialization: `.rematerialization`) and the new registry version."""
        rollback = plan or self.plan_rollback(view, to_version)
        if (rollback.view, rollback.target.version) != (view, to_version):
            raise RollbackError(
                view,
                to_version,
                f"the plan given is of '{rollback.view}' v{rollback.target.version}",
            )
        return rollback, apply_plan(rollback.plan, self.registry)

    def lineage(self, name: str) -> Lineage:
        """Sources -> views -> service -> training set for a saved training set (as its
        manifest pinned them), a feature service or a feature view (current versions)."""
        return lineage(self.registry, name)

    # --- offline -----------------------------------------------------------------------

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            from skewless.batch.spark import get_spark  # noqa: PLC0415 - pyspark on demand

            self._spark = get_spark(self.config.spark, self.repo_path)
        return self._spark

    def get_historical_features(
        self,
        entity_df: pd.DataFrame | DataFrame,
        features: Sequence[str] | FeatureService | str,
        full_feature_names: bool = False,
        timestamp_column: str | None = None,
        as_of: Manifest | int | datetime | None = None,
    ) -> RetrievalJob:
        """A point-in-time-correct training set: for every row of `entity_df` (join keys
        and a timestamp column), the latest feature values known at that time.

        `as_of` rebuilds history: a Manifest (its pinned definitions and data), a
        registry version (its definitions, the data as it was while it was current) or
        a datetime (the definitions applied then, each Delta input at its version then,
        each file source's files modified by then). The job's `manifest` records what
        was used."""
        ts_col = timestamp_column or self.config.entity_timestamp_column
        return self._training_sets().build(
            entity_df,
            features,
            full_feature_names=full_feature_names,
            timestamp_column=ts_col,
            as_of=as_of,
            current=self.catalog(),
        )

    # --- training sets ------------------------------------------------------------------

    def _training_sets(self) -> TrainingSets:
        from skewless.batch.training_sets import TrainingSets  # noqa: PLC0415 - pyspark

        return TrainingSets(
            project=self.project,
            repo_path=self.repo_path,
            registry=self.registry,
            session=lambda: self.spark,
            offline_root=resolve_path(self.repo_path, self.config.offline_store.path),
        )

    def save_training_set(self, name: str, job: RetrievalJob, description: str = "") -> TrainingSet:
        """Write `job`'s rows as a Delta table under the offline store and record its
        manifest in the registry. A name is saved once; saved sets never change (but
        for `forget`)."""
        return self._training_sets().save(name, job, description)

    def list_training_sets(self) -> list[TrainingSet]:
        return self._training_sets().list()

    def get_training_set(self, name: str) -> TrainingSet:
        return self._training_sets().get(name)

    def rebuild_training_set(
        self, target: str | Manifest, entity_df: pd.DataFrame | DataFrame | None = None
    ) -> RetrievalJob:
        """The training set `target` (a saved set's name or a manifest) built again from
        what its manifest pins; an unsaved set's manifest needs its `entity_df`."""
        return self._training_sets().rebuild(target, self.catalog(), entity_df)

    def reproduce(
        self,
        target: str | Manifest,
        entity_df: pd.DataFrame | DataFrame | None = None,
        origin: str = "manifest",
    ) -> ReproduceReport:
        """Rebuild `target` (a saved set's name or a manifest) and compare: the report
        says whether it is identical and, if not, what differs and why."""
        return self._training_sets().reproduce(target, self.catalog(), entity_df, origin)

    # --- statistics and drift ------------------------------------------------------------

    def statistics_reader(self) -> StatisticsReader:
        from skewless.batch.drift_sides import SparkSummaries  # noqa: PLC0415 - pyspark
        from skewless.batch.feature_table import table_path  # noqa: PLC0415 - pyspark

        offline_root = resolve_path(self.repo_path, self.config.offline_store.path)
        stats = self.config.statistics
        on_demand = SparkSummaries(
            session=lambda: self.spark,
            table_location=lambda view, data_hash: table_path(
                offline_root, self.project, view, data_hash
            ),
            training_sets=self.get_training_set,
            bins=stats.bins,
            top_k=stats.top_k,
        )
        return StatisticsReader(self.registry, on_demand, stats)

    def statistics(
        self, view: str, version: int | datetime | Literal["latest"] = "latest"
    ) -> VersionStatistics:
        """The feature statistics a materialization recorded for a Delta version of
        `view` (its current definition): a version number, the newest committed at or
        before a time, or the newest."""
        return self.statistics_reader().version(self.get_feature_view(view), version)

    def drift(
        self,
        view: str,
        reference: DataSide,
        current: DataSide = "latest",
        thresholds: Thresholds | None = None,
    ) -> DriftReport:
        """How `view`'s features changed from `reference` to `current`: each a Delta
        version, a time, "latest", WholeTable(version) or SavedTrainingSet(name); the
        thresholds default to the repo's `statistics.thresholds`."""
        return self.statistics_reader().drift(
            self.get_feature_view(view), reference, current, thresholds=thresholds
        )

    def log_to_mlflow(
        self, name_or_job: str | RetrievalJob, *, context: str = "training"
    ) -> LoggedTrainingSet:
        """Record a training set (a saved set's name, or a retrieval job) in the active
        MLflow run, starting one if none is: a dataset input (a saved set's source is its
        Delta table at the saved version), the manifest as the artifact
        `skewless/<context>/manifest.json`, and `skewless.<context>.*` tags. Needs the
        extra skewless[mlflow]."""
        from skewless.offline.mlflow_run import log_training_set  # noqa: PLC0415

        if isinstance(name_or_job, str):
            # from the registry alone: logging a saved set starts no Spark
            record = self.registry.training_set(name_or_job)
            if record is None:
                known = [r.name for r in self.registry.training_sets()]
                raise TrainingSetNotFoundError(name_or_job, known)
            if record.erasures:
                raise TrainingSetErasedError(
                    record.name, "its manifest no longer describes its rows, so it is not logged"
                )
            manifest = Manifest.of_data(
                record.manifest, origin=f"the manifest of training set '{record.name}'"
            )
            return log_training_set(manifest, record, context=context)
        return log_training_set(name_or_job.manifest, context=context)

    # --- erasure -----------------------------------------------------------------------

    def forget(self, view: str, keys: pd.DataFrame | str | Path) -> ErasureReport:
        """Delete the entities `keys` names (a dataframe, or a CSV or Parquet file whose
        columns are the view's join keys) from the view's Delta feature tables, the online
        store and every saved training set using the view (each one changed is marked
        erased). The view's source is not touched."""
        from skewless.batch.erasure import forget  # noqa: PLC0415 - pyspark on demand
        from skewless.offline.erasure import erasable_view  # noqa: PLC0415

        return forget(
            keys,
            view=erasable_view(self.registry, view),
            registry=self.registry,
            spark=self.spark,
            project=self.project,
            offline_root=resolve_path(self.repo_path, self.config.offline_store.path),
            online=self.online_store(),
        )

    def vacuum(self, target: str, retain_hours: float = 168.0, force: bool = False) -> VacuumReport:
        """Delta's VACUUM of a view's feature tables, a saved training set's table or a
        Delta path; refused (VacuumRefusedError) when it would break a saved set's pinned
        version, unless `force`."""
        from skewless.batch.vacuum import vacuum  # noqa: PLC0415 - pyspark on demand

        return vacuum(
            target,
            registry=self.registry,
            spark=self.spark,
            project=self.project,
            offline_root=resolve_path(self.repo_path, self.config.offline_store.path),
            retain_hours=retain_hours,
            force=force,
        )

    # --- teardown ---------------------------------------------------------------------

    def teardown(self, offline: bool | Confirm = False) -> TeardownReport:
        """Remove the project's online keys (no other project's) and stop the repo's
        embedded server; then, when `offline` is True or a function that is shown the
        `OfflineData` (every table, its files and bytes) answers True, delete the
        project's Delta feature tables, saved training sets and registry records (the
        registry file stays). Source data is never deleted, and nothing is when some of
        the offline data would be kept (TeardownRefusedError). Make a new FeatureStore to
        apply again afterwards."""
        from skewless.teardown import teardown  # noqa: PLC0415

        previous, self._online = self._online, None
        if previous is not None:  # its server may be stopped next
            previous.close()
        self._catalog = None
        return teardown(self.registry, self.config, self.repo_path, offline)

    # --- online -----------------------------------------------------------------------

    def _lookup_plan(
        self, features: Sequence[str] | FeatureService | str, full_feature_names: bool
    ) -> LookupPlan:
        """The compiled lookup of `features`, cached per registry version."""
        catalog = self.catalog()
        if not catalog.views:
            raise NothingAppliedError(self.project)
        refs = service_refs(features, catalog.services)
        return catalog.plan(refs, full_feature_names=full_feature_names)

    def online_url(self) -> str:
        """The configured Redis URL, or the embedded server's (started if need be; its
        URL carries the server's password, so keep it out of logs and output)."""
        from skewless.online.embedded import EmbeddedServer  # noqa: PLC0415

        return self.config.online_store.url or EmbeddedServer(self.embedded_dir).ensure_running()

    @property
    def embedded_dir(self) -> Path:
        from skewless.online.embedded import embedded_dir  # noqa: PLC0415

        return embedded_dir(self.repo_path)

    def online_store(self) -> OnlineStore:
        from skewless.online.redis import RedisOnlineStore  # noqa: PLC0415

        cfg = self.config.online_store
        return RedisOnlineStore.from_url(
            cfg.connection_url(self.online_url()), password=cfg.password
        )

    def materializer(self) -> Materializer:
        """The materialization runner of this repo (Spark, the offline root, Redis)."""
        from skewless.materialize import Materializer, OnlineTarget  # noqa: PLC0415 - pyspark

        cfg = self.config.online_store
        return Materializer(
            project=self.project,
            repo_path=self.repo_path,
            registry=self.registry,
            spark=self.spark,
            offline_root=resolve_path(self.repo_path, self.config.offline_store.path),
            online=OnlineTarget(
                cfg.connection_url(self.online_url()), cfg.password, cfg.driver_write_max_keys
            ),
            statistics=self.config.statistics if self.config.statistics.enabled else None,
        )

    def materialize(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        views: Sequence[str] | None = None,
        *,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        feature_views: Sequence[str] | None = None,
    ) -> list[MaterializationRecord]:
        """Materialize the rows of [start, end] (event time, inclusive; no start means all
        history) into each view's Delta table and the latest row per entity into Redis.
        Naive datetimes mean UTC. Every run is recorded in the registry. Feast's names
        `start_date`, `end_date` and `feature_views` are accepted too."""
        from skewless.materialize import applied_views  # noqa: PLC0415 - pyspark on demand

        start = _either("start", start, "start_date", start_date)
        end = _either("end", end, "end_date", end_date)
        if end is None:
            raise TypeError("materialize() needs the end of the interval: end (or end_date)")
        views = _either("views", views, "feature_views", feature_views)
        chosen = applied_views(self.registry, self.project, views)
        return self.materializer().run(chosen, start, end, incremental=False)

    def materialize_incremental(
        self,
        end: datetime | None = None,
        views: Sequence[str] | None = None,
        *,
        end_date: datetime | None = None,
        feature_views: Sequence[str] | None = None,
    ) -> list[MaterializationRecord]:
        """Materialize what arrived since each view's last run, up to `end` (default now),
        including late rows with old event times. A view's first incremental run takes
        all of its history up to `end`. Feast's `end_date` and `feature_views` are
        accepted too."""
        from skewless.materialize import applied_views  # noqa: PLC0415 - pyspark on demand

        end = _either("end", end, "end_date", end_date)
        views = _either("views", views, "feature_views", feature_views)
        chosen = applied_views(self.registry, self.project, views)
        return self.materializer().run(chosen, None, end, incremental=True)

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]],
        full_feature_names: bool = False,
        request_time: datetime | None = None,
        request_data: Mapping[str, Sequence[Any]] | None = None,
    ) -> OnlineResponse:
        """The latest materialized values for each entity row (a dict of join keys),
        read from Redis with the same codec and rules the gRPC server uses. On-demand
        features read their request fields from `request_data` (field -> one value per
        entity row) or, as Feast passes them, from the entity rows."""
        from skewless.serving.service import lookup  # noqa: PLC0415

        plan = self._lookup_plan(features, full_feature_names)
        for attempt in (1, 2):
            if self._online is None:
                self._online = self.online_store()
            try:
                return lookup(plan, self._online.read, entity_rows, request_time, request_data)
            except OnlineStoreUnavailableError:
                self._online.close()
                self._online = None  # reconnect (and restart an embedded server) once
                if attempt == 2 or self.config.online_store.url:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


T = TypeVar("T")


def _either(name: str, value: T | None, feast_name: str, feast_value: T | None) -> T | None:
    """An argument given by its skewless name or by Feast's, not both."""
    if value is not None and feast_value is not None:
        raise TypeError(f"give {name} or {feast_name}, not both")
    return value if value is not None else feast_value
