# luma-bot: a small image (python slim, no compilers in the final stage), run as a non-root user, the bot as
# PID 1 (exec form: it gets SIGTERM itself and stops cleanly), health from its own /healthz.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY cogs ./cogs
# The versions CI tested (constraints.txt), in a virtualenv copied whole into the final stage.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home luma
COPY --from=build /opt/venv /opt/venv
# LUMA_BOT_HOME: where a SQLite database would live (mount a volume); with PostgreSQL nothing is written there
# but the command-sync record. HTTP_LISTEN on all interfaces inside the container: publish it only to
# 127.0.0.1 on the host (see docker-compose.yml) and put a TLS proxy in front for callbacks.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LUMA_BOT_HOME=/data \
    HTTP_LISTEN=0.0.0.0:8080
USER luma
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
