# syntax=docker/dockerfile:1
# The session-bridge daemon. Build context is the repository root:
#   docker build -f docker/bridge.Dockerfile -t session-bridge .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only the package and its metadata (see bridge.Dockerfile.dockerignore).
COPY . /src
RUN pip install /src \
 && rm -rf /src \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin bridge
USER bridge

# 6001: Socket.IO. The admin listener (6002: /healthz, /readyz, /metrics)
# stays on 127.0.0.1 inside the container unless configured otherwise.
EXPOSE 6001
# The daemon stops gracefully on SIGTERM (Docker's default stop signal).
CMD ["session-bridge", "serve", "--host", "0.0.0.0", "--port", "6001", "--redis-url", "redis://redis:6379/0"]
