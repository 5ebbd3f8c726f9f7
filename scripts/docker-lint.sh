#!/usr/bin/env bash
# Static checks of the container files, no Docker engine needed (run in CI): hadolint on the
# Dockerfile (no warnings, no ignored rules) and `docker compose config -q` on the compose file
# alone and with the GPU override.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/docker-tools.sh
source "$REPO/scripts/docker-tools.sh"
cd "$REPO"

hadolint=$(hadolint_binary)
compose=$(compose_binary)

"$hadolint" --failure-threshold info Dockerfile
echo "hadolint: Dockerfile clean ($("$hadolint" --version))"
"$compose" -f docker-compose.yml config -q
"$compose" -f docker-compose.yml -f docker-compose.gpu.yml config -q
echo "compose config: docker-compose.yml and docker-compose.gpu.yml valid ($("$compose" version))"
