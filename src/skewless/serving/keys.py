"""Join keys of online lookups: which rows and values a lookup takes. One home for the
rules that in-process and gRPC lookups both apply."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from skewless.errors import EntityRowsError, clip
from skewless.feature_request import ViewRequest
from skewless.rules.schema import KEY_TYPES
from skewless.types import ENGINES, DType

_KEY_PYTHON = {t.name: ENGINES[t.name].key_python for t in KEY_TYPES}
_NAMED = {int: "an int", str: "a str", bytes: "bytes", bool: "a bool"}

# The exact Python types a join key may have without a closer look (the general check,
# check_join_keys, also takes numpy integers and the like, and names the culprit
# of a refusal), per declared type; None means any type the key encoding takes.
PLAIN_KEY_TYPES: Mapping[str | None, frozenset[type]] = {
    **{name: frozenset({python, type(None)}) for name, python in _KEY_PYTHON.items()},
    None: frozenset({int, str, bytes, bool, type(None)}),
}

# Declared key type -> the Python values a key of that type takes (the key encoding
# has no other kinds); a type missing here takes what any key takes.
_KEY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    name: ((numbers.Integral,) if python is int else (python,), _NAMED[python])
    for name, python in _KEY_PYTHON.items()
}
_ENCODABLE = ((bool, numbers.Integral, str, bytes), "an int, str, bytes or bool")
_INT64 = (-(2**63), 2**63 - 1)  # what the key encoding holds of an integer


def check_join_keys(
    requests: Sequence[ViewRequest], entity_rows: Sequence[Mapping[str, Any]]
) -> None:
    """Every join key the requests need is in every row, with a value the online key
    encoding takes (an integer, str, bytes, bool, or null, which finds nothing), of the
    type each view declares for it when one does (FeatureView.key_fields). Raises
    EntityRowsError naming the row, the key, and the expected and given types. In-process
    and gRPC lookups both go through here, so both refuse the same rows."""
    checks: dict[str, list[tuple[str, DType | None]]] = {}
    for req in requests:
        declared = {f.name: f.dtype for f in req.view.key_fields}
        for key in req.join_keys:
            checks.setdefault(key, []).append((req.name, declared.get(key)))
    for i, row in enumerate(entity_rows):
        for key, views in checks.items():
            if key not in row:
                raise EntityRowsError(
                    f"no join key '{key}' (needed by feature view '{views[0][0]}')",
                    row=i,
                    key=key,
                )
            value = row[key]
            if value is None:
                continue
            for view, dtype in views:
                problem = _key_problem(key, value, view, dtype)
                if problem is not None:
                    raise EntityRowsError(problem, row=i, key=key)


def _outside_int64(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return False
    return not _INT64[0] <= int(value) <= _INT64[1]


def _shown(value: Any, show: Callable[[Any], str] = repr) -> str:
    """A value as an error shows it, however large (Python refuses to print an int of
    over 4,300 digits)."""
    if isinstance(value, numbers.Integral) and int(value).bit_length() > 256:
        return f"a {int(value).bit_length()}-bit integer"
    return clip(show(value))


def _key_problem(key: str, value: Any, view: str, dtype: DType | None) -> str | None:
    """Why `value` (not null) cannot be join key `key` of `view`, declared `dtype` there
    (None: not declared), or None when it can."""
    types, wanted = _KEY_TYPES.get("" if dtype is None else dtype.name, _ENCODABLE)
    # a bool is an int to Python, not to the key encoding
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        if _outside_int64(value):
            return f"join key '{key}' is {_shown(value, str)}, outside a 64-bit integer's range"
        return None
    given = f"join key '{key}' is a {type(value).__name__} ({_shown(value)})"
    if dtype is None or dtype.name not in _KEY_TYPES:
        return f"{given}; a join key is {wanted} (feature view '{view}')"
    return f"{given}, but feature view '{view}' declares it {dtype!r}: give {wanted}"


def required_keys(requests: Sequence[ViewRequest]) -> list[str]:
    keys: list[str] = []
    for req in requests:
        keys.extend(k for k in req.join_keys if k not in keys)
    return keys
