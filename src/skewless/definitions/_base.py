"""Shared pieces of the definition models: immutability, name rules, error conversion."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from skewless.errors import DefinitionError
from skewless.feast_names import ARGUMENTS, OBJECT_VALUES, advice

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_name(value: str, what: str = "name") -> str:
    if not NAME_RE.match(value):
        raise ValueError(
            f"{what} {value!r} is not an identifier (letters, digits and _, not starting "
            "with a digit)"
        )
    if value.startswith("__"):
        raise ValueError(f"{what} {value!r} may not start with '__' (reserved for skewless)")
    return value


def definition_error(exc: ValidationError, kind: str, name: object) -> DefinitionError:
    """Pydantic's first error as a DefinitionError naming the object and the field. An
    argument it does not take is named as such, with what to use instead when it is
    one of Feast's; such an argument is reported first, since it is usually why a
    required one is missing (`batch_source=` given, `source=` missing)."""
    errors = exc.errors()
    feast = [
        (loc, advice(ARGUMENTS, (kind, loc), "a Feast argument that skewless does not take"))
        for e in errors
        if e["type"] == "extra_forbidden" and (loc := ".".join(str(p) for p in e["loc"]))
    ]
    for loc, message in feast:
        if message is not None:
            return _error(message, kind, name, loc)
    for e in errors:
        at = ".".join(str(p) for p in e["loc"])
        if (kind, at) in OBJECT_VALUES and not isinstance(e.get("input"), str):
            found = advice(OBJECT_VALUES, (kind, at), "a Feast value that skewless does not take")
            return _error(found or "", kind, name, at)
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and field is not None:
        msg = f"unknown argument {field!r}"
    return _error(msg, kind, name, field)


def _error(message: str, kind: str, name: object, field: str | None) -> DefinitionError:
    return DefinitionError(
        message, object_kind=kind, object_name=name if isinstance(name, str) else None, field=field
    )


class Definition(BaseModel):
    """Base of every definition: frozen, validated, no I/O, unknown fields rejected.

    Subclasses accept their first argument positionally (`Entity("driver", ...)`) as well
    as by keyword, like Feast's constructors, and raise DefinitionError on bad input.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    _positional: ClassVar[str] = "name"
    _kind: ClassVar[str] = "definition"

    def __init__(self, first: Any = None, /, **data: Any) -> None:
        if first is not None:
            data[self._positional] = first
        try:
            super().__init__(**data)
        except ValidationError as exc:
            # an unnamed source is known by its path
            name = data.get("name") or data.get(self._positional)
            raise definition_error(exc, self._kind, name) from None


class WithSchema(Definition):
    """A definition with a `schema` of fields (feature views, request sources, on-demand
    views): `schema` shadows a BaseModel attribute, so it is stored as `schema_`."""

    model_config = Definition.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _alias_schema(cls, data: object) -> object:
        if isinstance(data, dict) and "schema" in data:
            data = dict(data)
            data["schema_"] = data.pop("schema")
        return data
