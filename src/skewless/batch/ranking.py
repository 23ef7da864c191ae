"""The ranking rule (rules/ranking.py) on Spark: the tie hash as SQL and as a column, and
the rank's fields, in the rule's order, that the point-in-time join, deduplication and
the MERGE compare (each followed by the values, the rule's last field)."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F  # noqa: N812

from skewless.batch.sources import CTS, TS
from skewless.definitions import FeatureView
from skewless.rules.ranking import HashAtom, hash_atoms
from skewless.types import DType

TIE = "__tie"  # the tie hash of a row's feature values


def _atom_sql(atom: HashAtom, qualifier: str) -> str:
    column = f"{qualifier}`{atom.feature}`"
    match atom.kind:
        case "is_null":
            return f"({column} IS NULL)"
        case "size":
            return f"array_size({column})"
        case "value":
            return column
        case "elements":
            return f"transform({column}, x -> named_struct('n', x IS NULL, 'v', x))"


def tie_hash_sql(features: Sequence[tuple[str, DType]], qualifier: str = "") -> str:
    """The tie hash of the features' columns (`qualifier` prefixes each, e.g. "s.").
    Spark's SQL xxhash64 always uses seed 42, as rules/ranking.py says."""
    return f"xxhash64({', '.join(_atom_sql(a, qualifier) for a in hash_atoms(features))})"


def _features(view: FeatureView) -> list[tuple[str, DType]]:
    return [(f.name, f.dtype) for f in view.stored]


def tie_hash(view: FeatureView) -> Column:
    """The tie hash of a row of the view's source, as read (batch/sources.py)."""
    return F.expr(tie_hash_sql(_features(view)))


def rank_fields(view: FeatureView, *, event_time: bool = True) -> list[Column]:
    """The rank's fields of a row of the view's source (batch/sources.py's columns), in
    the rule's order: the event time (left out within one event time), the created time,
    the tie hash. The values follow them in every struct that ranks rows."""
    fields = [F.col(CTS).alias(CTS), tie_hash(view).alias(TIE)]
    return [F.col(TS).alias(TS), *fields] if event_time else fields


def values_struct(view: FeatureView) -> Column:
    """Every feature of the view, in schema order: the rank's last field."""
    return F.struct(*[F.col(f"`{f}`") for f in view.stored_names])


def table_rank_sql(view: FeatureView, side: str) -> str:
    """The rank within one event time, (created time, tie hash, values), of a row of the
    view's Delta table aliased `side`: what the MERGE compares."""
    created = view.source.created_timestamp_column or "created_timestamp"
    values = ", ".join(f"{side}.`{f}`" for f in view.stored_names)
    return (
        f"struct({side}.`{created}`, {tie_hash_sql(_features(view), f'{side}.')}, struct({values}))"
    )
