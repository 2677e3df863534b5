# fedserver's container image: `docker compose build` (see compose.yaml and the README's "Docker"
# section); scripts/check-image.sh builds it with buildah and tests it with podman.
#
# The base, pinned by digest: a rebuild gets the same system and the same Python. To update it, look
# the current digest up and replace the one below, then rebuild and run scripts/check-image.sh:
#   docker buildx imagetools inspect python:3.11-slim-bookworm      (the "Digest:" line), or
#   skopeo inspect --format '{{.Digest}}' docker://python:3.11-slim-bookworm
# `--build-arg BASE_IMAGE=IMAGE` builds on another Debian bookworm base with python3 at /usr/local/bin
# (check-image.sh makes one with debootstrap when the registry cannot be reached).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# ---- build stage: pip, setuptools and the wheels live here only; the image gets the venv.
FROM ${BASE_IMAGE} AS build
# pip trusts the system's certificate store (and so a TLS-inspecting proxy whose CA is installed there).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY requirements.lock requirements-build.lock ./
# The runtime dependencies exactly as locked (requirements.lock, made from pyproject.toml by
# pip-compile: see the README), every file checked against its hash, wheels only.
RUN python3 -m venv --without-pip /opt/fedserver \
 && python3 -m pip --python /opt/fedserver/bin/python install --no-deps --require-hashes --only-binary=:all: \
        -r requirements.lock
COPY pyproject.toml README.md ./
COPY fedserver ./fedserver
COPY activities ./activities
COPY storefront ./storefront
COPY rewards ./rewards
COPY migrations ./migrations
# fedserver itself, built as a wheel with the locked setuptools and wheel (requirements-build.lock).
RUN python3 -m venv /tmp/build-tools \
 && /tmp/build-tools/bin/pip install --no-deps --require-hashes -r requirements-build.lock \
 && /tmp/build-tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && python3 -m pip --python /opt/fedserver/bin/python install --no-deps --no-index /tmp/wheels/fedserver-*.whl \
 && /opt/fedserver/bin/fedserver --version

# ---- the image: the base, the venv and the default config; no pip, no setuptools, no build tree.
FROM ${BASE_IMAGE}
# uid and gid 1000 own /data: a bind mount needs `chown 1000:1000 DIR` (PostgreSQL's initdb needs the
# passwd entry). The base's own pip and setuptools go: nothing installs anything at run time.
RUN python3 -m pip uninstall --yes --quiet pip setuptools wheel \
 && useradd --uid 1000 --user-group --create-home --home-dir /home/fedserver --shell /usr/sbin/nologin fedserver \
 && install -d -o 1000 -g 1000 -m 0750 /data
COPY --from=build /opt/fedserver /opt/fedserver
COPY config.toml /app/config.toml

# config.toml documents every key; FEDSERVER_<SECTION>__<KEY> variables override it, and
# FEDSERVER_CONFIG names another file (mount one and point this at it).
ENV PATH=/opt/fedserver/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    FEDSERVER_CONFIG=/app/config.toml \
    FEDSERVER_SERVER__HOST=0.0.0.0 \
    FEDSERVER_STORAGE__DATA_DIR=/data
WORKDIR /app
USER 1000:1000
VOLUME /data
EXPOSE 8000
# The first start creates the embedded database and migrates; a start after a crash runs PostgreSQL's
# recovery: failures in the first minute do not count. The port follows FEDSERVER_SERVER__PORT.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FEDSERVER_SERVER__PORT', '8000'), timeout=4)"]
# SIGTERM: in-flight requests get [server] shutdown_timeout, then the embedded PostgreSQL stops cleanly.
STOPSIGNAL SIGTERM
CMD ["fedserver", "run"]

# Last, so that a new revision or date rebuilds nothing above.
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="fedserver" \
      org.opencontainers.image.description="A self-hosted ActivityPub server for craft workshops, social enterprises and co-operatives" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
