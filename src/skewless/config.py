"""Project configuration: `feature_store.yaml`, validated with pydantic.

Backends are chosen by a `type` field (a discriminated union), so a validation error
points at the field of the backend actually configured. Secrets and URLs never need to
sit in the file: any string value may be written `${ENV_VAR}` (or `${ENV_VAR:-default}`),
and the variables below override the file outright:

    SKEWLESS_REGISTRY_PATH        registry.path
    SKEWLESS_OFFLINE_STORE_PATH   offline_store.path
    SKEWLESS_SPARK_MASTER         spark.master
    SKEWLESS_ONLINE_STORE_URL     online_store.url

`materialization:` is the default schedule of the views that declare none (the fields of
skewless.Schedule; durations as `PT10M`, `10m` or seconds), `scheduler:` tunes the runner
of `skewless schedule run`.

A file is checked whole before anything is reported: one ConfigError lists every problem
(unset variables, unknown keys, bad values, Feast-only keys with what skewless uses
instead, from feast_config.py), each naming its field as written in the file.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Field as PydanticField
from pydantic_core import ErrorDetails

from skewless.definitions.schedule import Schedule, check_cron, check_span, check_timezone
from skewless.errors import ConfigError, SkewlessError, clip, closest
from skewless.feast_config import feast_findings
from skewless.stats.drift import Thresholds

CONFIG_FILE = "feature_store.yaml"

ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "SKEWLESS_REGISTRY_PATH": ("registry", "path"),
    "SKEWLESS_OFFLINE_STORE_PATH": ("offline_store", "path"),
    "SKEWLESS_SPARK_MASTER": ("spark", "master"),
    "SKEWLESS_ONLINE_STORE_URL": ("online_store", "url"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SqliteRegistryConfig(_Strict):
    type: Literal["sqlite"] = "sqlite"
    path: str = "data/registry.db"

    @field_validator("path")
    @classmethod
    def _local(cls, v: str) -> str:
        if "://" in v:
            shown = masked(v)  # never a password in a message
            raise ValueError(
                f"{clip(shown)!r} is a URI: skewless's registry is a SQLite file, given by its path"
            )
        return v


RegistryConfig = Annotated[SqliteRegistryConfig, PydanticField(discriminator="type")]


class DeltaOfflineStoreConfig(_Strict):
    type: Literal["delta"] = "delta"
    path: str = "data/offline"


OfflineStoreConfig = Annotated[DeltaOfflineStoreConfig, PydanticField(discriminator="type")]


# Materialization writes up to this many entities per view from the driver, more from
# the executors (batch/materialize.py); 0 always writes from the executors.
DRIVER_WRITE_MAX_KEYS = 200_000


class RedisOnlineStoreConfig(_Strict):
    type: Literal["redis"] = "redis"
    url: str | None = None  # None: skewless starts an embedded server (online/embedded.py)
    password: str | None = None  # AUTH; better given as ${ENV_VAR} than in the file
    ssl: bool = False  # TLS: redis:// URLs are used as rediss://
    driver_write_max_keys: int = PydanticField(default=DRIVER_WRITE_MAX_KEYS, ge=0)

    def connection_url(self, url: str) -> str:
        """`url` with TLS applied when `ssl` is set."""
        if self.ssl and url.startswith("redis://"):
            return "rediss://" + url.removeprefix("redis://")
        return url


OnlineStoreConfig = Annotated[RedisOnlineStoreConfig, PydanticField(discriminator="type")]


class SparkConfig(_Strict):
    master: str = "local[*]"
    app_name: str = "skewless"
    conf: dict[str, str] = {}
    conf_file: str | None = None

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): _conf_value(val) for k, val in v.items()}
        return v


def _conf_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class TlsConfig(_Strict):
    """TLS for the online server: its certificate chain and private key (PEM files,
    relative to the repo folder), and with `client_ca_file` mutual TLS: only clients
    whose certificate that CA signed may call."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class ServingConfig(_Strict):
    """Limits of one call to the online server (`skewless serve`). A call over a limit is
    refused at once (RESOURCE_EXHAUSTED), before any work; in-process lookups
    (FeatureStore.get_online_features) are not limited."""

    max_entity_rows: int = PydanticField(default=10_000, ge=1)
    max_features: int = PydanticField(default=1_000, ge=1)
    # entity rows x features: what bounds the response and the work of a call
    max_response_values: int = PydanticField(default=1_000_000, ge=1)
    # Room for 10,000 rows of three 40-character string keys. Parsing holds the event
    # loop (about 10 ms per MB), so the default stays small; at most 1 GiB: gRPC's own
    # receive cap, twice this, is an int32.
    max_request_bytes: int = PydanticField(default=2 * 1024 * 1024, ge=1, le=1 << 30)
    # The bytes of all requests the server holds at once (a parsed request takes about
    # ten times its size): what bounds its memory, whatever the number of callers.
    max_inflight_request_bytes: int = PydanticField(default=64 * 1024 * 1024, ge=1)
    tls: TlsConfig | None = None  # None: plaintext


_DURATION_HELP = (
    "a duration: ISO 8601 ('PT10M', 'P2D'), a number with a unit ('90s', '10m', '1h', '2d', "
    "or combined: '1h30m') or a number of seconds"
)
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_SHORT_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = TypeAdapter(timedelta)


def parse_duration(value: Any, where: str) -> timedelta:
    """A duration as feature_store.yaml and the command line write it (see
    _DURATION_HELP); a SkewlessError naming `where` (an option, a field) and the value
    otherwise."""
    try:
        return _duration(value)
    except ValueError as exc:
        raise SkewlessError(f"{where}: {exc}") from None


def _duration(value: Any) -> timedelta:
    """parse_duration's reading, with a ValueError naming the value (for validators)."""
    if isinstance(value, timedelta):
        return value
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        if _SECONDS.fullmatch(text):
            seconds = float(text)
        elif _SHORT_DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        elif text.upper().startswith(("P", "-P")):
            try:
                return _DURATION.validate_python(text)
            except ValidationError:
                pass
    if seconds is not None and math.isfinite(seconds):
        try:
            return timedelta(seconds=seconds)
        except OverflowError:
            pass
    raise ValueError(f"expected {_DURATION_HELP}, got {clip(repr(value))}")


class ScheduleConfig(_Strict):
    """The project's default Schedule (`materialization:` in feature_store.yaml), for the
    views that declare none. Same fields as Schedule; durations as parse_duration reads
    them."""

    cron: str
    delay: timedelta = timedelta(0)
    catch_up: timedelta = timedelta(days=1)
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v)

    @field_validator("delay", "catch_up", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        return _duration(v)

    @field_validator("delay", "catch_up")
    @classmethod
    def _span(cls, v: timedelta, info: ValidationInfo) -> timedelta:
        return check_span(v, str(info.field_name))

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return check_timezone(v)

    def to_schedule(self) -> Schedule:
        return Schedule(
            cron=self.cron, delay=self.delay, catch_up=self.catch_up, timezone=self.timezone
        )


class SchedulerConfig(_Strict):
    """The runner of `skewless schedule run` and `schedule once`."""

    # how long a view's lease outlives its runner's last renewal (a runner killed with -9)
    lease_seconds: float = PydanticField(default=60, gt=0, allow_inf_nan=False)
    max_attempts: int = PydanticField(default=3, ge=1)  # of a tick, the first included
    # a failed attempt waits backoff_seconds * 2 ** (attempt - 1), at most max_backoff_seconds
    backoff_seconds: float = PydanticField(default=30, ge=0, allow_inf_nan=False)
    max_backoff_seconds: float = PydanticField(default=600, ge=0, allow_inf_nan=False)
    # the longest the runner sleeps before it reads the registry again (new definitions)
    poll_seconds: float = PydanticField(default=60, gt=0, allow_inf_nan=False)


class DriftThresholdsConfig(_Strict):
    """When a feature's drift warns or counts as drifted (stats/drift.py Thresholds, whose
    defaults these are): a statistic at or above a threshold crosses it."""

    psi_warn: float = PydanticField(default=0.1, ge=0, allow_inf_nan=False)
    psi_drifted: float = PydanticField(default=0.25, ge=0, allow_inf_nan=False)
    ks_warn: float = PydanticField(default=0.1, ge=0, le=1)
    ks_drifted: float = PydanticField(default=0.2, ge=0, le=1)
    js_warn: float = PydanticField(default=0.1, ge=0, le=1)
    js_drifted: float = PydanticField(default=0.2, ge=0, le=1)
    missing_rate_warn: float = PydanticField(default=0.05, ge=0, le=1)
    missing_rate_drifted: float = PydanticField(default=0.1, ge=0, le=1)
    category_min_share: float = PydanticField(default=0.005, ge=0, le=1)
    category_drifted_share: float = PydanticField(default=0.01, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholdsConfig:
        self.to_thresholds()  # its checks: each warn at most its drifted
        return self

    def to_thresholds(self) -> Thresholds:
        return Thresholds(**self.model_dump())


class StatisticsConfig(_Strict):
    """Feature statistics computed by every materialization (`statistics:`)."""

    enabled: bool = True
    bins: int = PydanticField(default=20, ge=2, le=100)  # of the reference's histogram
    # most frequent values kept per string or boolean feature; 0 keeps none (their
    # statistics then hold no value of the data: counts, nulls and distinct only)
    top_k: int = PydanticField(default=50, ge=0, le=10_000)
    thresholds: DriftThresholdsConfig = DriftThresholdsConfig()


class RepoConfig(_Strict):
    project: str
    registry: RegistryConfig = SqliteRegistryConfig()
    offline_store: OfflineStoreConfig = DeltaOfflineStoreConfig()
    online_store: OnlineStoreConfig = RedisOnlineStoreConfig()
    spark: SparkConfig = SparkConfig()
    serving: ServingConfig = ServingConfig()
    entity_timestamp_column: str = "event_timestamp"
    materialization: ScheduleConfig | None = None  # the views without a schedule of their own
    scheduler: SchedulerConfig = SchedulerConfig()
    statistics: StatisticsConfig = StatisticsConfig()

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(f"project {v!r} is not an identifier")
        return v

    @field_validator("registry", mode="before")
    @classmethod
    def _registry_shorthand(cls, v: Any) -> Any:
        # `registry: data/registry.db` is short for `{type: sqlite, path: ...}`.
        return {"type": "sqlite", "path": v} if isinstance(v, str) else v


_DEFAULT_TYPES = {"registry": "sqlite", "offline_store": "delta", "online_store": "redis"}

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_log = logging.getLogger(__name__)

# A place in the document: keys and list indexes, as pydantic's error locations have them.
_Loc = tuple[str | int, ...]


def _where(loc: _Loc) -> str:
    """A location as the user writes it: `online_store.url`, `spark.conf[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


@dataclass(frozen=True)
class _Problem:
    loc: _Loc
    message: str

    def __str__(self) -> str:
        where = _where(self.loc)
        return masked(f"{where}: {self.message}" if where else self.message)


_CREDENTIALS = re.compile(r"//[^/@\s'\"]*@")


def masked(text: str) -> str:
    """`text` with the credentials of any URL in it (`//user:password@`) hidden: a value
    shown in a message may come from an environment variable holding a secret."""
    return _CREDENTIALS.sub("//...@", text)


def _expand(value: Any, loc: _Loc, environ: Mapping[str, str], problems: list[_Problem]) -> Any:
    """`value` with its `${VAR}` references replaced; an unset variable without a default
    is a problem, and its reference is kept as written."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(_Problem(loc, f"environment variable {name} is not set"))
            return m.group(0)

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, str(k)), environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), environ, problems) for i, v in enumerate(value)]
    return value


_warned: set[str] = set()


def parse_config(raw: Any, file: str, environ: Mapping[str, str] | None = None) -> RepoConfig:
    """Validate a parsed YAML document, applying `${VAR}` references and env overrides.

    Every problem is found before any is reported: the ConfigError lists them all, in the
    order of the file. Feast keys that ask for what skewless does anyway are ignored,
    each with a warning (logged here, so every caller shows it; once a process)."""
    environ = os.environ if environ is None else environ
    if not isinstance(raw, dict):
        raise ConfigError(file, "expected a mapping at the top level")
    problems: list[_Problem] = []
    expanded = _expand(raw, (), environ, problems)
    schedule = _schedule_section(expanded)
    findings, data = feast_findings(expanded)
    if schedule is not None:
        data["materialization"] = schedule[0]
    for finding in findings:
        warning = f"{file}: {finding.path}: ignored, {finding.message}"
        if not finding.refused and warning not in _warned:
            _warned.add(warning)  # once a process: a command may read the file twice
            _log.warning("%s", warning)
    problems += [_Problem(tuple(f.path.split(".")), f.message) for f in findings if f.refused]
    overridden = _complete(data, environ)
    config: RepoConfig | None = None
    try:
        config = RepoConfig.model_validate(data)
    except ValidationError as exc:
        seen = {p.loc for p in problems}  # an unset ${VAR} is the field's one problem
        for error in exc.errors():
            problem = _validation_problem(error)
            if problem.loc not in seen:
                source = overridden.get(problem.loc)
                if source:
                    problem = _Problem(problem.loc, f"{problem.message} (from {source})")
                problems.append(problem)
    if problems or config is None:
        order = {str(k): i for i, k in enumerate(raw)}
        problems.sort(key=lambda p: order.get(str(p.loc[0]), -1) if p.loc else -1)
        raise ConfigError(file, [str(p) for p in problems])
    return config


# Feast's `materialization:` (its batch settings) and skewless's (the default schedule)
# share a name: a mapping holding one of Feast's keys is Feast's, refused by
# feast_findings; any other value is skewless's.
_FEAST_MATERIALIZATION_KEYS = frozenset({"pull_latest_features", "online_write_batch_size"})


def _schedule_section(data: dict[str, Any]) -> tuple[Any] | None:
    """Takes skewless's `materialization` value out of `data` (before Feast's keys are
    looked for) and returns it, in a 1-tuple (it may be null); None, leaving `data` as it
    is, when there is none or it is Feast's."""
    if "materialization" not in data:
        return None
    value = data["materialization"]
    if isinstance(value, dict) and _FEAST_MATERIALIZATION_KEYS & set(map(str, value)):
        return None
    return (data.pop("materialization"),)


def _complete(data: dict[str, Any], environ: Mapping[str, str]) -> dict[_Loc, str]:
    """Fill in `data` the shorthands, default backend types and environment overrides;
    returns which fields the environment set, and from which variable."""
    if isinstance(data.get("registry"), str):
        data["registry"] = {"type": "sqlite", "path": data["registry"]}
    for section, default_type in _DEFAULT_TYPES.items():
        if isinstance(data.get(section), dict):
            data[section] = {"type": default_type, **data[section]}
    overridden: dict[_Loc, str] = {}
    for var, (section, key) in ENV_OVERRIDES.items():
        if environ.get(var):
            block = dict(data.get(section) or {})
            block[key] = environ[var]
            data[section] = block
            overridden[(section, key)] = var
    return overridden


def _validation_problem(error: ErrorDetails) -> _Problem:
    """A pydantic error as the user reads it: the field as written in the file (the
    backend's type tag dropped: `online_store.url`, not `online_store.redis.url`), what
    is wrong, and the value at fault where the message does not say it."""
    loc: _Loc = tuple(error["loc"])
    if len(loc) > 1 and loc[0] in _DEFAULT_TYPES:
        loc = (loc[0], *loc[2:])  # the backend's type tag
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "union_tag_invalid":
        name = str(loc[0]).replace("_", " ")
        tag, expected = ctx.get("tag", ""), ctx.get("expected_tags", "")
        return _Problem((*loc, "type"), f"unknown {name} type {tag!r}; skewless's: {expected}")
    if kind == "extra_forbidden":
        hint = closest(str(loc[-1]), _fields_at(loc[:-1]))
        return _Problem(loc, "unknown key" + (f"; did you mean {hint!r}?" if hint else ""))
    if kind == "missing":
        return _Problem(loc, "missing (required)")
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        # the kind of value only: a string here may be a URL with a password in it
        return _Problem(loc, f"expected a mapping, got {_kind_of(value)}")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    secret = any("password" in str(part) for part in loc)
    if kind != "value_error" and not secret and isinstance(value, str | int | float | bool):
        message += f" (got {clip(repr(value))})"
    return _Problem(loc, message)


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    kinds = {str: "a string", list: "a list", bool: "a boolean", int: "a number"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), "a number")


def _fields_at(loc: _Loc) -> list[str]:
    """The keys the section at `loc` takes (for "did you mean" hints)."""
    model: type[BaseModel] = RepoConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_config(repo_path: Path, file: Path | None = None) -> RepoConfig:
    """The repo's feature_store.yaml, or `file` (relative to the repo folder)."""
    path = repo_path / (CONFIG_FILE if file is None else file)
    if not path.is_file():
        raise ConfigError(
            str(path), "not found: is this a feature repo? (`skewless init` makes one)"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), masked(f"not valid YAML: {exc}")) from None
    return parse_config(raw, str(path))


def resolve_path(repo_path: Path, value: str) -> str:
    """A config path relative to the repo folder; URIs (s3a://...) are kept as they are."""
    if "://" in value:
        return value
    p = Path(value)
    return str(p if p.is_absolute() else (repo_path / p).resolve())
