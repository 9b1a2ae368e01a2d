# One image for every Hysbys process; the command picks the role:
#   hysbys serve notify|inbound|scheduler   HTTP API on :8001 / :8002 / :8003
#   hysbys worker notify|inbound|scheduler  that service's consumers and outbox relay
#   hysbys ticker                           the scheduler's ticker
#   hysbys db upgrade                       migrations, run once per release
# Configuration is environment only (HYSBYS_*); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md* ./
COPY shared/ shared/
COPY services/ services/
# A regular (not editable) install: the package and its migrations land in
# site-packages and the source tree is not needed at run time.
RUN pip install . && cd / && rm -rf /src

RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home \
        --shell /usr/sbin/nologin hysbys \
    && mkdir -p /app/var && chown hysbys:hysbys /app/var
WORKDIR /app
USER 10001

ENV HYSBYS_HTTP_HOST=0.0.0.0 \
    HYSBYS_VAR_DIR=/app/var

EXPOSE 8001 8002 8003
CMD ["hysbys", "serve", "notify"]
