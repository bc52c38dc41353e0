# Studbook service image: the API only (no torch); evals run in `studbook worker` images.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lineage ./lineage
COPY registry ./registry
COPY evals ./evals
COPY migrations ./migrations
COPY studbook_cli ./studbook_cli
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# /data holds the database, tokens and keys: `serve` refuses it unless only studbook can read it.
RUN useradd --system --uid 10001 --home-dir /data --create-home studbook && chmod 700 /data
COPY --from=build /install /usr/local
ENV STUDBOOK_DATA_DIR=/data \
    STUDBOOK_HOST=0.0.0.0 \
    STUDBOOK_PORT=8000 \
    PYTHONUNBUFFERED=1
# STUDBOOK_DATABASE_URL selects PostgreSQL, e.g. postgresql+psycopg://studbook@db/studbook;
# unset, the service keeps a SQLite file in /data.
USER studbook
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["studbook", "serve", "--host", "0.0.0.0", "--port", "8000"]
