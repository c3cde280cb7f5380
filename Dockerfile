# citypilot: one image for every role (collect, api, gateway, simulate); the command picks it.
# Slim, non-root, dependencies pinned in deploy/docker/requirements.txt.
#   docker build -t citypilot:0.1.0 .
#   docker run --rm citypilot:0.1.0 --help
# Checked statically in tests/deploy/test_compose.py (no Docker engine runs in CI).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/citypilot
COPY deploy/docker/requirements.txt /tmp/requirements.txt
RUN /opt/citypilot/bin/pip install --no-deps -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY citypilot ./citypilot
COPY ingest ./ingest
COPY api ./api
COPY simulators ./simulators
COPY dashboards ./dashboards
# --no-deps: everything it needs is already pinned above; a missing pin fails at import in
# the build's smoke test below rather than pulling an unpinned version.
RUN /opt/citypilot/bin/pip install --no-deps . && /opt/citypilot/bin/citypilot --help >/dev/null

FROM python:3.11-slim-bookworm
# Pango and a font for the evaluation report's PDF (WeasyPrint); nothing else from apt.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 \
        libpangoft2-1.0-0 fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/citypilot --create-home \
        --shell /usr/sbin/nologin citypilot
COPY --from=build /opt/citypilot /opt/citypilot
ENV PATH=/opt/citypilot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CITYPILOT_LOG_FORMAT=json \
    CITYPILOT_SPOOL_DIR=/var/lib/citypilot/spool \
    CITYPILOT_CATALOG_URL=sqlite:////var/lib/citypilot/catalog/catalog.db \
    CITYPILOT_METRICS_PORT=9108
USER citypilot
WORKDIR /var/lib/citypilot
RUN mkdir -p /var/lib/citypilot/spool /var/lib/citypilot/catalog
EXPOSE 9108 8000
# Liveness of a collector (its /healthz on CITYPILOT_METRICS_PORT); docker-compose.yml gives
# the api its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CITYPILOT_METRICS_PORT', '9108'), timeout=4)"]
ENTRYPOINT ["citypilot"]
CMD ["collect"]
