# Images of the import pipeline. No `# syntax=` line on purpose: that would pull a frontend
# image from a registry, and the builds must work where no registry is reachable.
#
#   worker        `python -m worker`: only the `worker` extra (dagster-pipes, Google clients;
#                 no dagster), non-root. Launched by WorkerLauncher(kind="docker" | "k8s").
#   codelocation  orchestrator + definitions for the Dagster Helm chart's user deployment
#                 (`dagster api grpc -m orchestrator.definitions`).
#
# Build (scripts/docker-up.sh does all of this, including the local base image):
#   DOCKER_BUILDKIT=1 docker build --target worker -t gcs-interval-import-worker:dev \
#     [--build-arg BASE_IMAGE=gcs-import-base:bookworm] \
#     [--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt] .
#
# BASE_IMAGE must provide `python3` 3.11 with the venv module (python:3.11-slim, or a debootstrap'ed
# Debian bookworm with python3 + python3-venv). The venv is created with that image's python and
# copied into a final stage from the same base, so its interpreter symlinks stay valid.
# The optional build secret `ca` is a CA bundle for pip (for a TLS-intercepting proxy).
ARG BASE_IMAGE=python:3.11-slim
# checkov:skip=CKV_DOCKER_7: checkov cannot resolve FROM ${BASE_IMAGE}; its default python:3.11-slim is a version tag, and scripts/docker-up.sh builds on a local debootstrap image (no registry digest to pin)
# checkov:skip=CKV_DOCKER_2: no HEALTHCHECK: the worker is a run-to-completion job (health is its exit code), and the codelocation runs under Kubernetes, which ignores HEALTHCHECK (probes go in the pod spec)

# -- build: one venv per target, dependencies first (cached until pyproject/constraints change) --
FROM ${BASE_IMAGE} AS build-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md* ./
# An empty package with the real metadata: installing its extra installs exactly the pinned
# dependencies, and this layer stays cached while only the source changes.
RUN mkdir -p worker && touch worker/__init__.py && { [ -f README.md ] || : > README.md; }

FROM build-base AS build-worker
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt ".[worker]" \
    && /opt/venv/bin/pip uninstall -y gcs-interval-import
COPY worker ./worker
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/venv/bin/pip install --no-deps -c constraints.txt . \
    && /opt/venv/bin/python -c 'import worker, dagster_pipes; import importlib.util as u; assert u.find_spec("dagster") is None, "dagster must not be in the worker image"' \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM build-base AS build-codelocation
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt ".[orchestrator]" \
    && /opt/venv/bin/pip uninstall -y gcs-interval-import
COPY worker ./worker
COPY orchestrator ./orchestrator
COPY localdev ./localdev
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    /opt/venv/bin/pip install --no-deps -c constraints.txt . \
    && /opt/venv/bin/python -c 'import orchestrator, worker, dagster, dagster_k8s'

# -- runtime base: non-root user, nothing else ---------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app
WORKDIR /home/app

# -- worker: the image WorkerLauncher runs ----------------------------------------------------------
FROM runtime AS worker
COPY --from=build-worker /opt/venv /opt/venv
LABEL org.opencontainers.image.title="gcs-interval-import-worker" \
      org.opencontainers.image.description="python -m worker: GCS interval drops into BigQuery (Dagster Pipes worker)"
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENTRYPOINT ["python", "-m", "worker"]

# -- codelocation: Dagster gRPC code server for the Helm chart's user deployment -------------------
FROM runtime AS codelocation
COPY --from=build-codelocation /opt/venv /opt/venv
LABEL org.opencontainers.image.title="gcs-interval-import-codelocation"
ENV DAGSTER_HOME=/home/app
USER 10001:10001
EXPOSE 3030
CMD ["dagster", "api", "grpc", "-m", "orchestrator.definitions", "-h", "0.0.0.0", "-p", "3030"]
