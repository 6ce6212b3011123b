# One image for the `api`, `worker` and `indexer` services (see docker-compose.yml).
#
#   docker build -t ragline .
#   docker build --build-arg TORCH_INDEX_URL=<PyTorch CPU wheel index> -t ragline .
#
# TORCH_INDEX_URL is empty by default (pip's configured index); point it at PyTorch's
# CPU wheel index to avoid pulling the CUDA build.
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    RAGLINE_DATA_DIR=/data

RUN groupadd --system --gid 10001 ragline \
    && useradd --system --uid 10001 --gid ragline --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ragline \
    && mkdir -p /data \
    && chown ragline:ragline /data

WORKDIR /app

# torch first, in its own layer: it is by far the largest dependency and rarely changes.
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"; \
    else \
        pip install --no-cache-dir "$TORCH_SPEC"; \
    fi

COPY pyproject.toml README.md ./
COPY ragline/ ragline/
COPY api/ api/
COPY workers/ workers/
COPY indexer/ indexer/
COPY cli/ cli/
RUN pip install --no-cache-dir . \
    && rm -rf build *.egg-info

# Runtime files, read relative to WORKDIR (RAGLINE_CONFIG, RAGLINE_PROMPTS_DIR defaults).
COPY prompts/ prompts/
COPY scorers/ scorers/
COPY ragline.yaml ./
COPY examples/ examples/

USER ragline

VOLUME /data
EXPOSE 8000

ENTRYPOINT ["ragline"]
CMD ["serve", "--host", "0.0.0.0"]
