# syntax=docker/dockerfile:1
# Build stage: a wheel of the service and of its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --wheel-dir /wheels .

# Runtime stage: only the wheels, the migrations and a non-root user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    SUPPORTDESK_HOST=0.0.0.0 \
    SUPPORTDESK_DATABASE_URL=sqlite+aiosqlite:////data/supportdesk.db \
    SUPPORTDESK_ATTACHMENTS_DIR=/data/attachments
RUN groupadd --system supportdesk && useradd --system --gid supportdesk --home /app supportdesk \
    && mkdir -p /app /data && chown supportdesk:supportdesk /data
WORKDIR /app
COPY --from=build /wheels /wheels
RUN python -m pip install --no-index --find-links /wheels supportdesk && rm -rf /wheels
COPY alembic.ini ./
COPY migrations ./migrations
USER supportdesk
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready').status != 200)"
CMD ["supportdesk", "serve"]
