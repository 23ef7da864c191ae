"""Which source columns can feed a feature view, and as what: the one schema rule.

Plan time (source_schema.py: Parquet footers, the Delta log, a CSV header) and read time
(batch/sources.py: the Spark schema of the source as read) each translate their native
types into ColumnType and call `check_schema`, so both accept and refuse exactly the same
sources, with the same words. The rule:

- A feature declared T is fed by a column of type T or of a type that widens to T
  without loss (int32 -> int64, float32 -> float64, `types.accepts`).
- A time (the timestamp field, the created timestamp column, a UnixTimestamp feature)
  is fed by a timestamp of any unit and zone, or a date (midnight UTC). A timestamp
  without a zone means UTC. Nanosecond timestamps (Parquet INT64 TIMESTAMP(NANOS), what
  pandas' `to_parquet()` writes) are truncated to the microsecond at or before them
  (`nanos_to_micros`, a floor, so -1 ns is -1 us, not 0), as the entity timestamps of a
  training set are.
- A join key is a scalar of a type the online key encoding holds: int32, int64, string,
  bytes or bool. The schema may pin its type; otherwise the key has the source's type
  (plan records it in the applied definition, see source_schema.with_key_types).
- A CSV column is text until it is parsed at read time: it feeds any scalar type (values
  that do not parse are counted and refused then), never an array. An undeclared CSV
  join key is a string.
- A CSV line with more or fewer fields than its file's header is malformed: the source
  is refused with the count per file, at plan (pyarrow, source_schema.csv_layout) and at
  every read (Spark's corrupt records, batch/sources.py), never read with fields filled
  in or dropped. Both read CSV as pandas writes it: quoted values may hold commas, line
  breaks and doubled quotes; a UTF-8 BOM, CRLF line endings and blank lines are allowed.
- A column that is missing, of a type skewless cannot carry, or stored in nanoseconds in
  some files of a folder and in another unit in others (Spark reads a folder with one
  type per column) feeds nothing.
- A derived feature (a Field with an `expr`) is not read from the source: the columns its
  expression names are. The timestamp field and the created timestamp column are read
  as times, a join key as its key type, a stored feature as its declared type, and any
  other column (an expression input) as the source holds it: a CSV column as a string,
  a date or a nanosecond timestamp as a timestamp. `derived_type` then checks each
  expression over those types (expr/check.py), at plan and at read time alike.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from skewless.definitions import FeatureView, Field
from skewless.expr.check import check_feature
from skewless.expr.nodes import columns as expression_columns
from skewless.types import ArrayType, DType, ScalarType, String, UnixTimestamp, accepts

# --- what a source column holds -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Date:
    """A calendar date: the instant is midnight UTC of that day."""

    name: ClassVar[str] = "date"


@dataclass(frozen=True, slots=True)
class NanosTimestamp:
    """Nanoseconds since the epoch, with or without a zone (Parquet INT64
    TIMESTAMP(NANOS)); read as the microsecond `nanos_to_micros` gives."""

    name: ClassVar[str] = "timestamp in nanoseconds"


@dataclass(frozen=True, slots=True)
class Text:
    """A CSV column: text until it is parsed into the declared type at read time."""

    name: ClassVar[str] = "text (CSV)"


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A type skewless cannot carry, named as the source names it (`int8`, `decimal(10,2)`)."""

    native: str

    @property
    def name(self) -> str:
        return f"{self.native} (not a type skewless can carry)"


@dataclass(frozen=True, slots=True)
class MixedUnits:
    """A column in nanoseconds in some files of a folder and of another type in others."""

    nanos_file: str
    other_file: str
    other: str  # the other file's type, by name

    @property
    def name(self) -> str:
        return (
            f"a timestamp in nanoseconds in {self.nanos_file} but {self.other} in "
            f"{self.other_file} (every file of a folder must store it in the same unit)"
        )


ColumnType = ScalarType | ArrayType | Date | NanosTimestamp | Text | Unsupported | MixedUnits

DATE = Date()
NANOS = NanosTimestamp()
TEXT = Text()

# The key types the online store's key encoding holds (online/codec.py encode_entity_key
# stores int32 and int64 alike as 64-bit integers).
KEY_TYPES: tuple[ScalarType, ...] = tuple(
    ScalarType(n) for n in ("int32", "int64", "string", "bytes", "bool")
)
_KEY_NAMES = ", ".join(t.name for t in KEY_TYPES)


def nanos_to_micros(nanos: int) -> int:
    """The microsecond a nanosecond timestamp is read as: the one at or before it."""
    return nanos // 1000


def combine_files(files: Sequence[tuple[str, Mapping[str, ColumnType]]]) -> dict[str, ColumnType]:
    """The columns of a folder of files (name, columns), as a reader that takes one type
    per column sees them: each column has the type of the first file that holds it,
    unless one file stores it in nanoseconds and another does not (MixedUnits)."""
    first: dict[str, tuple[str, ColumnType]] = {}
    mixed: dict[str, MixedUnits] = {}
    for file, columns in files:
        for name, ctype in columns.items():
            if name not in first:
                first[name] = (file, ctype)
                continue
            seen_file, seen = first[name]
            if name in mixed or (seen == NANOS) == (ctype == NANOS):
                continue
            if seen == NANOS:
                mixed[name] = MixedUnits(seen_file, file, ctype.name)
            else:
                mixed[name] = MixedUnits(file, seen_file, seen.name)
    return {name: mixed.get(name, ctype) for name, (_, ctype) in first.items()}


# --- the check ------------------------------------------------------------------------


class Role(enum.Enum):
    EVENT_TIME = "timestamp field"
    CREATED_TIME = "created timestamp column"
    JOIN_KEY = "join key"
    FEATURE = "feature"
    INPUT = "expression input"  # a column only derived features read


@dataclass(frozen=True, slots=True)
class ColumnRead:
    """One source column the view uses: its role, the type it is read as (the declared
    one, or the source's for an undeclared join key or an expression input) and what the
    source holds."""

    column: str
    role: Role
    dtype: DType
    source: ColumnType


@dataclass(frozen=True, slots=True)
class Problem:
    """A column the view cannot use, and why."""

    column: str
    role: Role
    declared: DType | None  # None: an undeclared join key, an expression input
    actual: ColumnType | None  # None: the source has no such column
    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    """The columns a view reads, in the order time, created time, keys, stored features,
    expression inputs; and every problem (the view is usable only without any)."""

    reads: tuple[ColumnRead, ...]
    problems: tuple[Problem, ...]

    @property
    def key_types(self) -> dict[str, DType]:
        return {r.column: r.dtype for r in self.reads if r.role is Role.JOIN_KEY}

    @property
    def column_types(self) -> dict[str, DType]:
        """Each column read, by its source name, as the type it is read as: the types a
        derived feature's expression sees."""
        found: dict[str, DType] = {}
        for r in self.reads:
            found.setdefault(r.column, r.dtype)
        return found


def feeds(declared: DType, actual: ColumnType) -> bool:
    """Whether a source column of type `actual` can be read as `declared`."""
    match actual:
        case ScalarType() | ArrayType():
            return accepts(declared, actual)
        case Date() | NanosTimestamp():
            return declared == UnixTimestamp
        case Text():
            return isinstance(declared, ScalarType)
        case Unsupported() | MixedUnits():
            return False


def check_schema(view: FeatureView, columns: Mapping[str, ColumnType]) -> SchemaCheck:
    """Every column `view` reads from a source with `columns`, and every problem."""
    src = view.source
    wanted: list[tuple[str, Role, DType | None]] = [
        (src.timestamp_field, Role.EVENT_TIME, UnixTimestamp)
    ]
    if src.created_timestamp_column:
        wanted.append((src.created_timestamp_column, Role.CREATED_TIME, UnixTimestamp))
    pinned = {f.name: f.dtype for f in view.key_fields}
    wanted += [(k, Role.JOIN_KEY, pinned.get(k)) for k in view.join_keys]
    wanted += [(f.name, Role.FEATURE, f.dtype) for f in view.stored if f.expr is None]
    users = expression_inputs(view, {column for column, _, _ in wanted})
    wanted += [(column, Role.INPUT, None) for column in users]

    reads: list[ColumnRead] = []
    problems: list[Problem] = []
    for column, role, declared in wanted:
        actual = columns.get(column)
        if actual is None:
            detail = f"{_what(column, role, users)} is missing from the source"
            problems.append(Problem(column, role, declared, None, detail))
            continue
        if role is Role.INPUT:
            dtype, detail = _input_type(_what(column, role, users), actual)
        elif declared is None:
            dtype, detail = _source_key_type(column, actual)
        else:
            dtype, detail = _declared(column, role, declared, actual)
        if dtype is None:
            problems.append(Problem(column, role, declared, actual, detail))
        else:
            reads.append(ColumnRead(column, role, dtype, actual))
    return SchemaCheck(tuple(reads), tuple(problems))


def expression_inputs(view: FeatureView, read: set[str]) -> dict[str, list[str]]:
    """The columns the view's derived features read that it reads for nothing else (not
    in `read`), each with the derived features that read it, in first-use order."""
    users: dict[str, list[str]] = {}
    for field in view.derived:
        assert field.expr is not None
        for column in expression_columns(field.expr):
            if column not in read:
                users.setdefault(column, []).append(field.name)
    return users


def _what(column: str, role: Role, users: Mapping[str, list[str]]) -> str:
    """A column as problems name it: its role, and for an expression input, who reads it."""
    if role is not Role.INPUT:
        return f"{role.value} '{column}'"
    readers = users[column]
    plural = "s" if len(readers) > 1 else ""
    return f"{role.value} '{column}' (of derived feature{plural} {_quoted(readers)})"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _input_type(what: str, actual: ColumnType) -> tuple[DType | None, str]:
    """A column only expressions read: (the type it is read as, "") or (None, why not)."""
    match actual:
        case ScalarType() | ArrayType():
            return actual, ""
        case Text():
            return String, ""
        case Date() | NanosTimestamp():
            return UnixTimestamp, ""
    return None, f"{what} is {actual.name} in the source"


def derived_type(field: Field, check: SchemaCheck) -> DType:
    """The type a derived feature's expression gives over the columns `check` reads (the
    declared type or one it widens to); ExpressionTypeError naming the sub-expression
    at fault when the expression does not type-check or gives what the feature cannot
    hold. Plan (source_schema.py) and read time (batch/sources.py) both call it."""
    assert field.expr is not None
    result = check_feature(field.expr, field.dtype, check.column_types)
    assert isinstance(result, ScalarType | ArrayType)  # check_feature refuses the others
    return result


def _source_key_type(column: str, actual: ColumnType) -> tuple[DType | None, str]:
    """An undeclared join key: (its type, "") or (None, what is wrong)."""
    if actual == TEXT:
        return ScalarType("string"), ""
    if isinstance(actual, ScalarType) and actual in KEY_TYPES:
        return actual, ""
    what = f"join key '{column}'"
    if isinstance(actual, ArrayType):
        return None, f"{what} is an array ({actual.name}); join keys must be scalars: {_KEY_NAMES}"
    return None, f"{what} is {actual.name} in the source; join keys must be {_KEY_NAMES}"


def _declared(
    column: str, role: Role, declared: DType, actual: ColumnType
) -> tuple[DType | None, str]:
    """A column of a declared type: (that type, "") or (None, what is wrong)."""
    what = f"{role.value} '{column}'"
    if role is Role.JOIN_KEY and declared not in KEY_TYPES:
        return None, f"{what} is declared {declared.name}; join keys must be {_KEY_NAMES}"
    if feeds(declared, actual):
        return declared, ""
    if role in (Role.EVENT_TIME, Role.CREATED_TIME):
        return None, f"{what} must be a timestamp or a date but the source has {actual.name}"
    if actual == TEXT:
        return None, f"{what} is declared {declared.name} but a CSV column holds no arrays"
    if role is Role.JOIN_KEY and isinstance(actual, ArrayType):
        return None, (
            f"{what} is declared {declared.name} but the source has an array ({actual.name}); "
            "join keys must be scalars"
        )
    return None, f"{what} is declared {declared.name} but the source has {actual.name}"
