# perfgate in a container: `docker build -t perfgate .` then, with a token (a non-loopback
# bind without one is refused),
#   docker run -p 8080:8080 -p 8081:8081 -e PERFGATE_AUTH_TOKENS='{"TOKEN": ["admin"]}' perfgate
# deploy/compose.yaml runs two instances behind nginx with Redis. The tests check that every
# command here parses with `perfgate serve` and every variable is a configuration key.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY perfgate ./perfgate
RUN python -m venv /opt/perfgate && /opt/perfgate/bin/pip install --no-cache-dir .

FROM python:3.11-slim
# tini as PID 1: it forwards SIGTERM to perfgate (which then drains) and reaps orphans that
# command jobs may leave, which a Python PID 1 would not.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/perfgate --create-home perfgate
COPY --from=build /opt/perfgate /opt/perfgate
ENV PATH=/opt/perfgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PERFGATE_SERVER_LOG_FORMAT=json
USER perfgate
WORKDIR /var/lib/perfgate
VOLUME /var/lib/perfgate
EXPOSE 8080 8081
# /readyz: 200 only while accepting work (503 while starting, draining, or Redis is down).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "perfgate", "serve"]
CMD ["--http", "0.0.0.0:8080", "--ws", "0.0.0.0:8081", "--data-dir", "/var/lib/perfgate"]
