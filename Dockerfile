# One image for every Hysbys process; the command picks the role:
#   hysbys serve notify|inbound|scheduler   HTTP API on :8001 / :8002 / :8003
#   hysbys worker notify|inbound|scheduler  that service's consumers and outbox relay
#   hysbys dispatcher | hysbys ticker       notify's dispatcher, the scheduler's ticker
#   hysbys db upgrade                       migrations, run once per release
# Configuration is environment only (HYSBYS_*): docs/configuration.md.
#
# The base is pinned by digest, so a rebuild gets the same Python and Debian until
# the pin is moved on purpose.  To refresh it (docs/operations.md "Rebuild the image"):
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
# and replace the sha256 below (keep the tag beside it for readers).
# The console's styles, GOV.UK Frontend's script and images (frontend/, pinned by its
# package-lock.json), built as `make console-assets` builds them.  The node base was
# taken pinned from a public Dockerfile of 2026-05 (it could not be pulled here).
FROM node:20-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS console
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN mkdir -p /build \
    && npx sass --pkg-importer=node --style=compressed --quiet-deps --no-source-map \
        console.scss /build/console.css \
    && cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js /build/ \
    && cp -r node_modules/govuk-frontend/dist/govuk/assets/images /build/ \
    && cp node_modules/govuk-frontend/dist/govuk/assets/manifest.json /build/

FROM python:3.11-slim@sha256:be1575ed968de893bd54f4c56315ff7c4736ce522c1bca08fd521731aafc0d76

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The exact versions of requirements.lock (make lock), then the package itself
# without resolving again.  The bench extra (celery, matplotlib, py-spy) is not in
# the image: `hysbys bench` runs from a checkout (make bench) and says so here.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md* ./
COPY shared/ shared/
COPY services/ services/
# the console's built assets, and its Welsh catalogues compiled (.po -> .mo)
COPY --from=console /build/ services/notify/console/static/build/
RUN python -m services.notify.console.catalogues compile
# A regular (not editable) install: the package and its migrations land in
# site-packages and the source tree is not needed at run time.
RUN pip install --no-deps . && cd / && rm -rf /src

RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home \
        --shell /usr/sbin/nologin hysbys \
    && mkdir -p /app/var && chown hysbys:hysbys /app/var
WORKDIR /app
USER 10001

ENV HYSBYS_HTTP_HOST=0.0.0.0 \
    HYSBYS_VAR_DIR=/app/var

EXPOSE 8001 8002 8003 9100
# Probes /healthz of whatever this container runs: an API on its port, a worker,
# the dispatcher or the ticker on HYSBYS_METRICS_PORT (services/healthcheck.py).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "services.healthcheck"]
CMD ["hysbys", "serve", "notify"]
