# syntax=docker/dockerfile:1

# skewless for production: the CLI with its dependencies exactly as uv.lock pins them, a
# Java 17 runtime, the Delta Lake jars and the JVM class archive, all baked in, so a
# container downloads and builds nothing when it starts.
#
#   docker build -t skewless .
#   docker run --rm skewless --help
#   docker run --rm -v "$PWD/feature_repo:/app/feature_repo" -p 6566:6566 skewless \
#       serve --repo feature_repo --host 0.0.0.0
#
# The layers go from the least to the most often changed: the locked dependencies are
# installed from pyproject.toml and uv.lock alone, before any source is copied, so a code
# change rebuilds only the layers from `COPY src` on.

# The Python minor the tests run on and pyproject.toml's requires-python name
# (tests/unit/test_containers.py checks that they agree).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_PROJECT_ENVIRONMENT=/opt/skewless/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml uv.lock ./
# uv at the version pyproject.toml pins ([tool.uv] required-version), as scripts/setup.sh
# installs it: uv refuses to run as another version.
RUN uv_version="$(python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["uv"]["required-version"].removeprefix("=="))')" \
    && pip install --no-cache-dir "uv==${uv_version}"
# --locked installs exactly uv.lock and fails when it is out of date with pyproject.toml.
# No extras: the dev tools, Feast's benchmark and MLflow stay out of the image.
RUN uv sync --locked --no-install-project --no-editable
COPY README.md ./
COPY src ./src
# skewless itself as a wheel in the virtualenv (not editable): the image needs no source tree.
RUN uv sync --locked --no-editable


FROM ${PYTHON_IMAGE}
# Spark runs on the JRE. tini, as PID 1, passes SIGTERM on to skewless alone (a scheduler
# then finishes its run; the JVM stays up until it is done) and reaps exited processes.
# Slim images lack /usr/share/man/man1, which the JRE's package scripts write into.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        openjdk-17-jre-headless tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/skewless skewless

COPY --from=build /opt/skewless/venv /opt/skewless/venv
# The same folders at build and at run time: what is fetched and built here is what the
# containers find.
ENV PATH=/opt/skewless/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    SKEWLESS_JARS_DIR=/opt/skewless/jars \
    SKEWLESS_CDS_DIR=/opt/skewless/cds
# The class archive belongs to this image's Java and Spark jars, so it is built here, in the
# final stage, after both are in place. Fetched files are private to their owner: made
# readable by all, writable by root only. The archive's Spark session leaves files in /tmp.
RUN cd "$(mktemp -d)" \
    && python -m skewless.batch.jars >/dev/null \
    && python -m skewless.batch.class_archive >/dev/null \
    && chmod -R a+rX /opt/skewless \
    && cd / && rm -rf /tmp/* /tmp/.[!.]*

# A feature repo is mounted at /app/feature_repo (docker-compose.yml does). Its data/
# folder exists here, owned by the runtime user, because Docker gives a new named volume
# the owner of the folder it is mounted on: a volume there starts writable by that user.
RUN mkdir -p /app/feature_repo/data && chown -R skewless:skewless /app
USER skewless
# As the runtime user, with the caches read-only to it: a jar or an archive missing,
# unreadable or not matching this image's Java and Spark fails the build here, where it
# would otherwise be fetched (or Spark start slower) in every container.
RUN python -c 'from skewless.batch import class_archive, jars; \
[p.open("rb").close() for p in jars.ensure_delta_jars()]; \
archive = class_archive.archive_path(); \
assert archive and "SharedArchiveFile" in class_archive.with_archive(""), "no class archive"; \
archive.open("rb").close()' \
    && skewless --help >/dev/null

WORKDIR /app
# gRPC, HTTP/JSON and Prometheus metrics, as docker-compose.yml serves them.
EXPOSE 6566 6567 9464
ENTRYPOINT ["tini", "--", "skewless"]
CMD ["--help"]
