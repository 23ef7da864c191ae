"""Content digests of Spark frames that depend on the rows, not on their order or on
how Spark partitions them: a training set built twice from the same pinned inputs has
the same digest, however many tasks built it.

Each row is hashed (Spark's xxhash64 over every column, each preceded by whether it is
null, so that moving a null from one column to the next changes the hash), twice with
two different leading constants; the digest is taken over the row count, the column
names and types, and the two sums of those hashes modulo 2^64. Equal multisets of rows
give equal digests; a changed, missing or extra row changes both sums.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812
from pyspark.sql.types import ArrayType, MapType, StructType

from skewless.offline.manifest import RowsDigest

_SALTS = ("skewless.rows.1", "skewless.rows.2")
_MOD = 1 << 64


def _hashed(frame: DataFrame, name: str) -> list[Column]:
    column = F.col(f"`{name}`")
    nested = isinstance(frame.schema[name].dataType, ArrayType | MapType | StructType)
    # xxhash64 skips null elements inside an array ([x, null], [null, x] and [x] would
    # hash alike) and cannot hash a map: a nested value is hashed as its JSON, which
    # keeps every element's position and nulls.
    value = F.to_json(column) if nested else column
    return [column.isNull(), value]


def digests(frame: DataFrame, groups: Mapping[str, Sequence[str]]) -> dict[str, RowsDigest]:
    """One RowsDigest per group of columns of `frame`, all in one pass."""
    aggs = [F.count(F.lit(1)).alias("rows")]
    for g, columns in enumerate(groups.values()):
        parts = [p for name in columns for p in _hashed(frame, name)]
        for s, salt in enumerate(_SALTS):
            hashed = F.xxhash64(F.lit(salt), *parts).cast("decimal(38,0)")
            aggs.append(F.coalesce(F.sum(hashed), F.lit(0)).cast("string").alias(f"h{g}_{s}"))
    row = frame.agg(*aggs).collect()[0]
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    result = {}
    for g, (key, columns) in enumerate(groups.items()):
        sums = [int(row[f"h{g}_{s}"]) % _MOD for s in range(len(_SALTS))]
        described = tuple((name, types[name]) for name in columns)
        body = json.dumps(
            {"columns": described, "rows": int(row["rows"]), "sums": sums}, separators=(",", ":")
        )
        result[key] = RowsDigest(
            columns=described,
            rows=int(row["rows"]),
            digest=hashlib.sha256(body.encode()).hexdigest()[:32],
        )
    return result


def rows_digest(frame: DataFrame) -> RowsDigest:
    return digests(frame, {"all": frame.columns})["all"]
