# fedserver with an external PostgreSQL (see compose.yaml). Without FEDSERVER_DATABASE__URL
# the container would run its own embedded PostgreSQL in /data instead.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    FEDSERVER_SERVER__HOST=0.0.0.0 FEDSERVER_STORAGE__DATA_DIR=/data

RUN useradd --create-home --uid 1000 fedserver && mkdir /data && chown fedserver /data
WORKDIR /app
COPY pyproject.toml README.md config.toml ./
COPY fedserver ./fedserver
COPY activities ./activities
COPY storefront ./storefront
COPY rewards ./rewards
COPY migrations ./migrations
RUN pip install --no-cache-dir .

USER fedserver
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
STOPSIGNAL SIGTERM
CMD ["fedserver", "--config", "/app/config.toml", "run"]
