"""Entity: the thing features describe, identified by one or several join keys."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import field_validator, model_validator

from skewless.definitions._base import Definition, check_name


class Entity(Definition):
    """`Entity("driver", join_keys=["driver_id"])`; join_keys default to `[name]`."""

    _kind: ClassVar[str] = "entity"

    kind: Literal["entity"] = "entity"
    name: str
    join_keys: tuple[str, ...] = ()
    description: str = ""
    tags: dict[str, str] = {}
    owner: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("join_keys") and "name" in data:
            data = {**data, "join_keys": [data["name"]]}
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("join_keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for key in v:
            check_name(key, "join key")
        if len(set(v)) != len(v):
            raise ValueError(f"join keys repeat a name: {list(v)}")
        return v
