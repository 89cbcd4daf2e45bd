# Production image: pinned dependencies, non-root, migrations then uvicorn at start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY comments ./comments
RUN pip install --no-cache-dir --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin comments \
    && mkdir -p /app/var \
    && chown comments /app/var

USER 10001
# PostgreSQL: set COMMENTS_DATABASE_URL=postgresql+asyncpg://user:pass@host/db and COMMENTS_SECRET_KEY
# (the same on every instance). Without them the image runs SQLite in the /app/var volume.
ENV COMMENTS_HOST=0.0.0.0 \
    COMMENTS_PORT=8000 \
    COMMENTS_WORKERS=2 \
    COMMENTS_DATA_DIR=/app/var
VOLUME ["/app/var"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['COMMENTS_PORT']}/healthz\", timeout=4)"]
CMD ["sh", "-c", "comments migrate && exec comments serve"]
