# The image of both the inference service (the default command) and the trainer
# (`python -m trainer`). Two stages: the builder makes a virtual environment in /opt/venv,
# the final stage is the base image plus that environment, run by an unprivileged user.
#
# Build arguments:
#   BASE_IMAGE       any Debian-like image with Python 3.11 and its venv module (python3 -m venv)
#   TORCH_INDEX_URL  where torch and torchvision come from: the PyTorch CPU index by default
#                    (a CPU-only image); empty = the default package index, whose Linux torch
#                    is the CUDA build (see docker-compose.gpu.yml)
#   WHEELHOUSE_URL   a folder of wheels (URL) to install from with no package index at all,
#                    for offline builds (scripts/compose-smoke.sh serves one); empty = unused
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG WHEELHOUSE_URL=
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# Dependencies first (their own layer, rebuilt only when pyproject.toml changes), with the
# torch pins read from pyproject.toml so that they are written in one place.
COPY pyproject.toml ./
RUN python3 -m venv /opt/venv \
    && python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && grep -E '^(torch|torchvision)[=<>~! ]' /tmp/requirements.txt > /tmp/torch.txt \
    && if [ -n "$WHEELHOUSE_URL" ]; then \
         /opt/venv/bin/pip install --no-index --find-links "$WHEELHOUSE_URL" -r /tmp/requirements.txt; \
       elif [ -n "$TORCH_INDEX_URL" ]; then \
         /opt/venv/bin/pip install --index-url "$TORCH_INDEX_URL" -r /tmp/torch.txt \
         && /opt/venv/bin/pip install -r /tmp/requirements.txt; \
       else \
         /opt/venv/bin/pip install -r /tmp/requirements.txt; \
       fi

# Then the project itself (not editable: the final stage takes only /opt/venv).
COPY . ./
RUN if [ -n "$WHEELHOUSE_URL" ]; then set -- --no-index --find-links "$WHEELHOUSE_URL"; fi \
    && /opt/venv/bin/pip install --no-deps "$@" . \
    && /opt/venv/bin/python -I -c "import digitcore, service.app, trainer.train"

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /app/data /app/models \
    && chown app:app /app/data /app/models
COPY --from=builder /opt/venv /opt/venv
# HOST=0.0.0.0: inside a container the service must listen beyond loopback; publishing the
# port (docker run -p, compose ports:) decides who can reach it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    HOST=0.0.0.0 \
    PORT=8000 \
    MODEL_PATH=/app/models/mnist_cnn.pth \
    LINE_READER_PATH=/app/models/mnist_lines.pth
WORKDIR /app
# numeric, so that runtimes can check it is not root without reading /etc/passwd
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "service"]
