"""The Dockerfile and docker-compose.yml, checked without a Docker engine: what the image
must hold for a container to start without installing or downloading anything, and what
the compose services must share. `make lint` validates the compose file's syntax
(`docker-compose config`); these tests pin what that cannot see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DATA_MOUNT = "/app/feature_repo/data"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest, continuation lines joined


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """The instructions of each stage (the ARGs before the first FROM form stage 0)."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not line.startswith("# syntax="):
            continue  # comments, also between continuation lines, as Docker drops them
        if not line.strip() and not pending:
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        keyword, _, args = (pending + line).strip().partition(" ")
        pending = ""
        if keyword:
            instructions.append(Instruction(keyword.upper(), args.strip()))
    stages: list[list[Instruction]] = [[]]
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text())
BUILD, FINAL = STAGES[1], STAGES[-1]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SKEWLESS_SERVICES = {name: s for name, s in SERVICES.items() if "build" in s}


def index(stage: list[Instruction], keyword: str, needle: str) -> int:
    """Position of the first `keyword` instruction whose arguments contain `needle`."""
    for i, instruction in enumerate(stage):
        if instruction.keyword == keyword and needle in instruction.args:
            return i
    raise AssertionError(f"no {keyword} with {needle!r} in the stage")


def base_image() -> str:
    (arg,) = [i.args for i in STAGES[0] if i.args.startswith("PYTHON_IMAGE=")]
    return arg.removeprefix("PYTHON_IMAGE=")


def seconds(duration: str) -> float:
    """A compose duration such as 2m, 90s or 1m30s, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_dockerfile_parser_joins_continuations_and_drops_comments() -> None:
    stages = parse_dockerfile('ARG A=1\nFROM x AS b\nRUN a \\\n# note\n    && b\nCMD ["c"]\n')
    assert stages == [
        [Instruction("ARG", "A=1")],
        [
            Instruction("FROM", "x AS b"),
            Instruction("RUN", "a     && b"),
            Instruction("CMD", '["c"]'),
        ],
    ]


def test_dockerfile_python_is_the_tested_python() -> None:
    # Both stages use one interpreter: the virtualenv built in the first links to it.
    assert [stage[0].args.split()[0] for stage in STAGES[1:]] == ["${PYTHON_IMAGE}"] * 2
    image_minor = re.fullmatch(r"python:(\d+\.\d+)-slim-bookworm", base_image())
    assert image_minor, base_image()
    lowest = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    tested = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert image_minor.group(1) == lowest == tested


def test_dockerfile_installs_the_lock_before_the_source() -> None:
    lock = index(BUILD, "COPY", "uv.lock")
    dependencies = index(BUILD, "RUN", "--no-install-project")
    source = index(BUILD, "COPY", "src")
    project = max(i for i, x in enumerate(BUILD) if x.keyword == "RUN" and "uv sync" in x.args)
    assert lock < dependencies < source < project
    assert "pyproject.toml" in BUILD[lock].args
    syncs = [i.args for i in BUILD if "uv sync" in i.args]
    assert len(syncs) == 2
    assert all("--locked" in s and "--no-editable" in s and "--extra" not in s for s in syncs)


def test_dockerfile_installs_the_pinned_uv() -> None:
    (install,) = [i.args for i in BUILD if "pip install" in i.args]
    assert '"uv==${uv_version}"' in install
    code = re.search(r"python -c '([^']*)'", install)
    assert code, install
    found = subprocess.run(
        [sys.executable, "-c", code.group(1)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert f"=={found}" == PYPROJECT["tool"]["uv"]["required-version"]


def test_dockerfile_bakes_jars_and_class_archive_into_the_final_stage() -> None:
    env = " ".join(i.args for i in FINAL if i.keyword == "ENV")
    assert "SKEWLESS_JARS_DIR=/opt/skewless/jars" in env
    assert "SKEWLESS_CDS_DIR=/opt/skewless/cds" in env
    java = index(FINAL, "RUN", "openjdk-17-jre-headless")
    venv = index(FINAL, "COPY", "--from=build /opt/skewless/venv")
    jars = index(FINAL, "RUN", "python -m skewless.batch.jars")
    archive = index(FINAL, "RUN", "python -m skewless.batch.class_archive")
    assert java < venv < jars <= archive
    assert "chmod -R a+rX /opt/skewless" in FINAL[jars].args  # the jars are fetched 0600
    # Only skewless.batch.jars names the Delta version: the image takes whatever it fetches.
    text = (ROOT / "Dockerfile").read_text()
    assert "io.delta" not in text
    assert "delta-spark" not in text


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    users = [i for i, x in enumerate(FINAL) if x.keyword == "USER"]
    assert users
    assert FINAL[users[-1]].args not in ("root", "0")
    # The check that nothing is left to fetch or build runs as that user.
    assert users[-1] < index(FINAL, "RUN", "ensure_delta_jars")
    assert [i.args for i in FINAL if i.keyword == "WORKDIR"][-1] == "/app"
    (entrypoint,) = [json.loads(i.args) for i in FINAL if i.keyword == "ENTRYPOINT"]
    assert entrypoint[-1] == "skewless"
    assert "skewless" in PYPROJECT["project"]["scripts"]
    if entrypoint[0] == "tini":
        assert " tini" in FINAL[index(FINAL, "RUN", "apt-get install")].args


def test_dockerignore_keeps_the_copied_inputs_only() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    kept = {line.removeprefix("!").rstrip("/") for line in lines if line.startswith("!")}
    copied: set[str] = set()
    for stage in STAGES[1:]:
        for instruction in stage:
            if instruction.keyword == "COPY" and not instruction.args.startswith("--from"):
                copied.update(instruction.args.split()[:-1])
    assert copied == kept


def test_compose_skewless_services_use_the_built_image() -> None:
    assert set(SKEWLESS_SERVICES) == {"materialize", "server", "scheduler", "demo"}
    images = {(s["build"], s["image"]) for s in SKEWLESS_SERVICES.values()}
    assert images == {(".", "${SKEWLESS_IMAGE:-skewless}")}
    for name, service in SKEWLESS_SERVICES.items():
        run = json.dumps([service.get("entrypoint"), service.get("command")])
        for install in ("apt-get", "make setup", "pip install", "uv sync", ".venv/"):
            assert install not in run, (name, install)
        targets = [volume.split(":")[1] for volume in service["volumes"]]
        assert not [t for t in targets if t.startswith("/opt") or t.endswith(".venv")], name


def test_compose_runners_share_the_repo_state_with_the_server() -> None:
    for name, service in SKEWLESS_SERVICES.items():
        assert "feature-data:" + DATA_MOUNT in service["volumes"], name
        assert "./feature_repo:/app/feature_repo" in service["volumes"], name
    assert "feature-data" in COMPOSE["volumes"]
    # The image makes the mount point its user's, so the new volume is writable by it.
    assert f"mkdir -p {DATA_MOUNT} && chown -R skewless:skewless /app" in [
        i.args for i in FINAL if i.keyword == "RUN"
    ]
    assert [i.args for i in FINAL if i.keyword == "USER"][-1] == "skewless"


def test_compose_scheduler_runs_on_after_the_first_materialization() -> None:
    scheduler = SKEWLESS_SERVICES["scheduler"]
    assert scheduler["command"] == ["schedule", "run", "--repo", "feature_repo"]
    assert scheduler["restart"] == "unless-stopped"
    assert seconds(scheduler["stop_grace_period"]) >= 60
    for name in ("scheduler", "server"):
        depends = SKEWLESS_SERVICES[name]["depends_on"]
        assert depends["materialize"] == {"condition": "service_completed_successfully"}
        assert depends["redis"] == {"condition": "service_healthy"}


def test_compose_takes_the_redis_password_from_the_environment() -> None:
    password = "${REDIS_PASSWORD:-}"
    redis = SERVICES["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == password
    assert redis["environment"]["REDISCLI_AUTH"] == password
    for name, service in SKEWLESS_SERVICES.items():
        url = service["environment"]["SKEWLESS_ONLINE_STORE_URL"]
        assert url == f"redis://:{password}@redis:6379/0", name
    # No password written in the file, not even as a default.
    text = (ROOT / "docker-compose.yml").read_text()
    assert set(re.findall(r"\$\{REDIS_PASSWORD[^}]*\}", text)) == {password}
    assert "REDIS_PASSWORD:" not in text.replace(password, "")


def test_compose_duration_parses_compose_units() -> None:
    assert (seconds("2m"), seconds("90s"), seconds("1m30s"), seconds("1h")) == (120, 90, 90, 3600)
