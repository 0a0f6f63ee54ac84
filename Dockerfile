# syntax=docker/dockerfile:1
# Build: docker build -t leaderwatch .
# Run:   docker run -v leaderwatch-data:/data -p 8080:8080 --env-file .env leaderwatch
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY package package
COPY sources sources
COPY storage storage
COPY alerts alerts
COPY bot bot
# The same install as `make run` (the project and its pinned ranges from pyproject.toml), without dev tools.
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 leaderwatch \
    && mkdir -p /data && chown leaderwatch:leaderwatch /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LEADERWATCH_DB=/data/leaderwatch.db \
    LEADERWATCH_HTTP_PORT=8080 \
    MPLCONFIGDIR=/tmp/matplotlib
VOLUME ["/data"]
USER leaderwatch
WORKDIR /home/leaderwatch
EXPOSE 8080
ENTRYPOINT ["leaderwatch"]
CMD ["run"]
