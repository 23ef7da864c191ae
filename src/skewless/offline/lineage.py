"""Lineage: the graph from sources through feature views (and a feature service) to a
training set, as plain data.

For a saved training set the graph is built from its manifest: the definition versions
it used and the inputs as it read them (a Delta version, or a number of files). For a
feature service or a feature view it is built from the registry as it is now: the
current versions, each source's path, and the Delta feature table the view's current
definition was last materialized into, with its last version.

Pure: no engine, no I/O beyond the registry reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from skewless.definitions import DeltaSource, FeatureService, FeatureView
from skewless.errors import LineageNotFoundError
from skewless.offline.manifest import InputPin, Manifest
from skewless.registry.base import ObjectRecord, RegistryReader, TrainingSetRecord

NodeKind = Literal["source", "feature_table", "feature_view", "feature_service", "training_set"]


@dataclass(frozen=True)
class LineageNode:
    id: str  # unique within the graph
    kind: NodeKind
    name: str  # a source's or a table's path as written
    version: int | None = None  # a view's or service's definition version
    data_hash: str | None = None
    location: str | None = None  # where the data is (a source, a table, a saved set)
    format: str | None = None  # a source's: parquet, csv or delta
    delta_version: int | None = None  # pinned (a manifest), or the last one written
    files: int | None = None  # a file source pinned by its files: how many
    registry_version: int | None = None  # the registry version a training set used
    when: datetime | None = None  # a set's creation; a feature table's last run
    features: tuple[str, ...] = ()  # a view's features the consumer takes
    rows: int | None = None  # a training set's rows
    erasures: int = 0  # a training set's recorded erasures


@dataclass(frozen=True)
class LineageEdge:
    upstream: str  # node ids: data flows from upstream to downstream
    downstream: str


@dataclass(frozen=True)
class Lineage:
    root: str  # the id of the node asked for
    pinned: bool  # True: versions as a manifest pinned them; False: current versions
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]

    def node(self, node_id: str) -> LineageNode:
        return next(n for n in self.nodes if n.id == node_id)

    def upstream(self, node_id: str) -> list[LineageNode]:
        """The nodes whose data flows into `node_id`, in the order recorded."""
        return [self.node(e.upstream) for e in self.edges if e.downstream == node_id]

    def downstream(self, node_id: str) -> list[LineageNode]:
        return [self.node(e.downstream) for e in self.edges if e.upstream == node_id]


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self.edges: list[LineageEdge] = []

    def add(self, node: LineageNode) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def link(self, upstream: str, downstream: str) -> None:
        edge = LineageEdge(upstream, downstream)
        if edge not in self.edges:
            self.edges.append(edge)

    def build(self, root: str, *, pinned: bool) -> Lineage:
        return Lineage(root, pinned, tuple(self.nodes.values()), tuple(self.edges))


def lineage(registry: RegistryReader, name: str) -> Lineage:
    """The lineage of `name`: a saved training set, else a feature service, else a feature
    view. Raises LineageNotFoundError, listing what exists, for any other name."""
    saved = registry.training_set(name)
    if saved is not None:
        return training_set_lineage(saved)
    service = registry.get("feature_service", name)
    if service is not None:
        return service_lineage(registry, service)
    view = registry.get("feature_view", name)
    if view is not None:
        return view_lineage(registry, view)
    raise LineageNotFoundError(
        name,
        {
            "training sets": [s.name for s in registry.training_sets()],
            "feature services": [r.name for r in registry.current("feature_service")],
            "feature views": [r.name for r in registry.current("feature_view")],
        },
    )


# --- from a manifest: what a training set used and read --------------------------------


def training_set_lineage(record: TrainingSetRecord) -> Lineage:
    manifest = Manifest.of_data(
        record.manifest, origin=f"the manifest of training set '{record.name}'"
    )
    root = LineageNode(
        id=f"training_set:{record.name}",
        kind="training_set",
        name=record.name,
        location=record.location,
        delta_version=record.delta_version,
        registry_version=manifest.registry_version,
        when=record.created_at,
        rows=manifest.result.rows,
        erasures=len(record.erasures),
    )
    return manifest_lineage(manifest, root)


def manifest_lineage(manifest: Manifest, root: LineageNode) -> Lineage:
    """The graph of a manifest, ending in `root` (the training set it describes)."""
    graph = _Builder()
    graph.add(root)
    consumer = root.id
    if manifest.feature_service is not None:
        pin = manifest.definition("feature_service", manifest.feature_service)
        consumer = graph.add(
            LineageNode(
                id=f"feature_service:{manifest.feature_service}",
                kind="feature_service",
                name=manifest.feature_service,
                version=None if pin is None else pin.version,
                data_hash=None if pin is None else pin.data_hash,
            )
        )
        graph.link(consumer, root.id)
    features = _features_by_view(manifest.features)
    for pin in manifest.definitions:
        if pin.kind != "feature_view":
            continue
        view = graph.add(
            LineageNode(
                id=f"feature_view:{pin.name}",
                kind="feature_view",
                name=pin.name,
                version=pin.version,
                data_hash=pin.data_hash,
                features=features.get(pin.name, ()),
            )
        )
        graph.link(view, consumer)
        for read in manifest.inputs:
            if read.view == pin.name:
                graph.link(graph.add(_pinned_source(read)), view)
    return graph.build(root.id, pinned=True)


def _features_by_view(refs: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for ref in refs:
        view, _, feature = ref.partition(":")
        found.setdefault(view, []).append(feature)
    return {view: tuple(names) for view, names in found.items()}


def _pinned_source(read: InputPin) -> LineageNode:
    files = None if read.files is None else len(read.files)
    pinned = f"v{read.delta_version}" if read.delta_version is not None else f"{files} files"
    return LineageNode(
        id=f"source:{read.location}@{pinned}",
        kind="source",
        name=read.path,
        location=read.location,
        format=read.format,
        delta_version=read.delta_version,
        files=files,
    )


# --- from the registry: the current versions -------------------------------------------


def service_lineage(registry: RegistryReader, record: ObjectRecord) -> Lineage:
    service = record.definition()
    assert isinstance(service, FeatureService)
    graph = _Builder()
    root = graph.add(
        LineageNode(
            id=f"feature_service:{service.name}",
            kind="feature_service",
            name=service.name,
            version=record.version,
            data_hash=record.data_hash,
        )
    )
    for used in service.features:
        view = registry.get("feature_view", used.view)
        if view is not None:
            graph.link(_add_view(graph, registry, view, used.features), root)
    return graph.build(root, pinned=False)


def view_lineage(registry: RegistryReader, record: ObjectRecord) -> Lineage:
    graph = _Builder()
    root = _add_view(graph, registry, record, ())
    return graph.build(root, pinned=False)


def _add_view(
    graph: _Builder, registry: RegistryReader, record: ObjectRecord, features: tuple[str, ...]
) -> str:
    """Add a current view, its source, and the feature table it was materialized into."""
    view = record.definition()
    assert isinstance(view, FeatureView)
    node = graph.add(
        LineageNode(
            id=f"feature_view:{view.name}",
            kind="feature_view",
            name=view.name,
            version=record.version,
            data_hash=record.data_hash,
            features=features or view.feature_names,
        )
    )
    source = view.source
    source_format = "delta" if isinstance(source, DeltaSource) else source.file_format
    graph.link(
        graph.add(
            LineageNode(
                id=f"source:{source.path}", kind="source", name=source.path, format=source_format
            )
        ),
        node,
    )
    runs = [r for r in registry.materializations(view.name) if r.data_hash == record.data_hash]
    if runs:
        last = runs[-1]
        graph.link(
            node,
            graph.add(
                LineageNode(
                    id=f"feature_table:{last.delta_path}",
                    kind="feature_table",
                    name=last.delta_path,
                    location=last.delta_path,
                    data_hash=last.data_hash,
                    delta_version=max(r.delta_version for r in runs),
                    when=last.finished_at,
                )
            ),
        )
    return node
