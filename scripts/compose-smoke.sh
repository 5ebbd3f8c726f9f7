#!/usr/bin/env bash
# The container smoke test, against a real Docker engine that this script starts and stops.
#
# Installs docker.io and debootstrap (apt) and compose v2 (PyPI) when missing; starts its own
# dockerd (own data root, exec root and socket in a temp folder; no iptables, no IP forwarding,
# no docker0); makes a Debian bookworm base image with debootstrap (Python 3.11, as the
# official image has); builds the image through `docker compose build` from a wheelhouse that
# it serves on loopback (no package index is reachable from a build here); seeds the MNIST
# volume from the host's copy (containers reach no network here); then `docker compose up
# --wait` trains the model and serves it, real MNIST test digits posted with curl must come
# back right, the API must run as a non-root user, be healthy and see its models read-only, a
# second `up` must not train again, and `docker compose down -v` must leave nothing behind.
# Whatever happens, dockerd is stopped by its pid, its folders are removed, and the machine's
# networking (interfaces, routes, firewall rules, forwarding) is checked to be as it was.
#
# Needs root and the project's virtualenv. Environment (all optional):
#   SMOKE_TRAIN_ARGS      trainer flags, e.g. "--epochs 1" (default: none, the full recipe)
#   SMOKE_LINES_ARGS      line reader trainer flags (default: a quick one, 2,000 rows, 1 epoch)
#   SMOKE_CACHE           base image tarball, wheelhouse and tools (default build/docker)
#   SMOKE_STORAGE_DRIVER  force a storage driver (default: dockerd's choice, overlay2 here)
#   DEBIAN_MIRROR         the Debian mirror for debootstrap (default: read from apt's sources)
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SMOKE_CACHE=${SMOKE_CACHE:-$REPO/build/docker}
DOCKER_TOOLS=$SMOKE_CACHE/tools
# shellcheck source=scripts/docker-tools.sh
source "$REPO/scripts/docker-tools.sh"
SMOKE_TRAIN_ARGS=${SMOKE_TRAIN_ARGS-}
SMOKE_LINES_ARGS=${SMOKE_LINES_ARGS---rows 2000 --validation-rows 200 --epochs 1}
BASE_TAG=mnist-smoke-base:bookworm
START=$SECONDS
WORK="" DOCKERD_PID="" HTTP_PID="" UP_DONE="" NET_BEFORE=""
MADE_KEY="" MADE_RUN="" MADE_POLICY=""  # what dockerd or apt would leave behind

say() { printf '[smoke %3ds] %s\n' $((SECONDS - START)) "$*"; }
fail() { say "FAIL: $*" >&2; exit 1; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

net_state() {  # everything dockerd could change in the machine's networking
    ls /sys/class/net
    cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null || true
    if command -v ip >/dev/null; then ip route show; ip -6 route show 2>/dev/null || true; fi
    if command -v iptables >/dev/null; then
        for table in filter nat mangle raw; do iptables -t "$table" -S 2>/dev/null || true; done
    fi
}

apt_mirror() {  # the first main-archive URI in apt's sources (deb822 or one-line format)
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] && awk 'BEGIN { RS = "" } /Types:[^\n]*deb( |\n|$)/ && !/Suites:[^\n]*security/ {
                if (match($0, /URIs:[ \t]*[^ \t\n]+/)) {
                    uri = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", uri); print uri } }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] && awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) !~ /security/) print $i }' "$f"
        done
        true
    } | sed -n 1p
}

cleanup() {
    local rc=$? mounts
    set +e
    trap - ERR
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        if [ -n "$UP_DONE" ]; then
            [ "$rc" -ne 0 ] && docker compose logs --no-color --tail 40 >&2
            timeout 120 docker compose down -v --remove-orphans >/dev/null 2>&1
        fi
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID"
        say "dockerd (pid $DOCKERD_PID) stopped"
    fi
    if [ -n "$WORK" ] && [ -f "$WORK/exec/containerd/containerd.pid" ]; then
        local cpid
        cpid=$(cat "$WORK/exec/containerd/containerd.pid")
        kill -0 "$cpid" 2>/dev/null && kill -TERM "$cpid"
    fi
    [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
    if [ -n "$WORK" ]; then
        mounts=$(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r)
        [ -n "$mounts" ] && echo "$mounts" | xargs -n 1 umount -l
        rm -rf "$WORK"
        say "temp folder removed (engine data, images, volumes)"
    fi
    [ -n "$MADE_KEY" ] && rm -f /etc/docker/key.json
    [ -n "$MADE_RUN" ] && rm -rf /run/docker
    [ -n "$MADE_POLICY" ] && rm -f /usr/sbin/policy-rc.d
    if [ -n "$NET_BEFORE" ]; then
        if ! diff <(echo "$NET_BEFORE") <(net_state) >&2; then
            say "FAIL: the machine's networking changed (diff above)" >&2
            rc=1
        fi
    fi
    if [ "$rc" -eq 0 ]; then say "PASS ($((SECONDS - START)) s in all)"; else say "FAILED (exit $rc)" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'say "failed at line $LINENO: $BASH_COMMAND" >&2' ERR

[ "$(id -u)" -eq 0 ] || fail "needs root (apt-get, dockerd, debootstrap)"
cd "$REPO"

# --- tools ------------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep the package from starting a system daemon
        MADE_POLICY=1
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    fi
    apt_log=$(mktemp)
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1 || { cat "$apt_log" >&2; fail "apt-get"; }
    rm -f "$apt_log"
fi
compose=$(compose_binary)

free_kb=$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
[ "$free_kb" -gt $((25 * 1024 * 1024)) ] || fail "needs 25 GB free in ${TMPDIR:-/tmp}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mnist-smoke.XXXXXX")
mkdir -p "$WORK/docker-config/cli-plugins" "$WORK/mnist" "$WORK/digits"
ln -s "$compose" "$WORK/docker-config/cli-plugins/docker-compose"
export DOCKER_CONFIG=$WORK/docker-config DOCKER_HOST=unix://$WORK/docker.sock DOCKER_BUILDKIT=0

# --- our own dockerd --------------------------------------------------------------------------
NET_BEFORE=$(net_state)
[ -e /etc/docker/key.json ] || MADE_KEY=1
[ -e /run/docker ] || MADE_RUN=1
echo '{}' >"$WORK/daemon.json"  # ignore any /etc/docker/daemon.json
# Without iptables or forwarding, containers reach nothing beyond the host ("IPv4 forwarding is
# disabled" warnings are expected); published ports still work through docker-proxy.
dockerd --config-file "$WORK/daemon.json" --data-root "$WORK/root" --exec-root "$WORK/exec" \
    --host "$DOCKER_HOST" --pidfile "$WORK/dockerd.pid" \
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
    ${SMOKE_STORAGE_DRIVER:+--storage-driver "$SMOKE_STORAGE_DRIVER"} >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 60); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; fail "dockerd died"; }
    sleep 1
done
docker version >/dev/null || fail "dockerd did not answer within 60 s"
say "dockerd $(docker version -f '{{.Server.Version}}') up (pid $DOCKERD_PID, storage $(docker info -f '{{.Driver}}'))"

# --- a local Debian bookworm base (Python 3.11 and venv), cached as a tarball -----------------
base_tar=$SMOKE_CACHE/base-bookworm.tar
if [ ! -f "$base_tar" ]; then
    mirror=$(apt_mirror)
    [ -n "$mirror" ] || fail "no Debian mirror in apt's sources; set DEBIAN_MIRROR"
    say "debootstrap bookworm (minbase + python3, python3-venv)"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$WORK/rootfs" \
        "$mirror" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
    mkdir -p "$SMOKE_CACHE"
    tar -C "$WORK/rootfs" -cf "$base_tar.part" . && mv "$base_tar.part" "$base_tar"
    rm -rf "$WORK/rootfs"
fi
docker import "$base_tar" "$BASE_TAG" >/dev/null
say "base image $BASE_TAG: $(docker run --rm --network none "$BASE_TAG" python3 --version)"

# --- the wheelhouse, served on loopback to a build on the host network ------------------------
wheels=$SMOKE_CACHE/wheelhouse
mkdir -p "$wheels"
"$PYTHON" -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >"$WORK/requirements.txt"
say "wheelhouse: pip download $(wc -l <"$WORK/requirements.txt") requirements into $wheels"
"$PYTHON" -m pip download --quiet -d "$wheels" -r "$WORK/requirements.txt" "setuptools>=68" wheel \
    >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log" >&2; fail "pip download"; }
wheel_port=$(free_port)
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$wheels" "$wheel_port" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
for _ in $(seq 30); do curl -sf -o /dev/null "http://127.0.0.1:$wheel_port/" && break; sleep 0.5; done

# --- build, seed MNIST, up ----------------------------------------------------------------------
export BASE_IMAGE=$BASE_TAG WHEELHOUSE_URL=http://127.0.0.1:$wheel_port/ BUILD_NETWORK=host
say "docker compose build (log: build.log in the temp folder)"
timeout 2400 docker compose build >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; fail "build"; }
say "image built: $(docker image inspect -f '{{.Size}}' mnist-digits:latest | awk '{ printf "%.2f GB", $1 / 1e9 }')"

"$PYTHON" -m trainer.data --root "$REPO/data" >"$WORK/mnist.log" 2>&1 || { cat "$WORK/mnist.log" >&2; fail "MNIST on the host"; }
install -m 644 "$REPO"/data/MNIST/raw/*-ubyte "$WORK/mnist/"
UP_DONE=1
docker compose run --rm --no-deps -v "$WORK/mnist:/seed:ro" trainer \
    python -m trainer.data --root /app/data --local /seed >"$WORK/seed.log" 2>&1 || { cat "$WORK/seed.log" >&2; fail "seeding the MNIST volume"; }
say "MNIST volume seeded from the host's copy"

API_PORT=$(free_port)
export API_PORT TRAIN_ARGS=$SMOKE_TRAIN_ARGS LINES_ARGS=$SMOKE_LINES_ARGS
say "docker compose up --wait (API on localhost:$API_PORT, TRAIN_ARGS='$TRAIN_ARGS', LINES_ARGS='$LINES_ARGS')"
# The full recipe trains in about 8 minutes alone on 2 cores; a shared machine takes longer.
docker compose up --wait --wait-timeout 2400 >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "up"; }
say "up: $(docker compose logs --no-color trainer | grep -o 'saved .*')"

# --- checks -------------------------------------------------------------------------------------
trainer=$(docker compose ps -a -q trainer)
api=$(docker compose ps -q api)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$trainer")" = 0 ] || fail "trainer did not exit 0"
[ "$(docker inspect -f '{{.State.Health.Status}}' "$api")" = healthy ] || fail "api not healthy"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$(docker inspect -f '{{.State.Pid}}' "$api")/status")
[ "$uid" != 0 ] || fail "the api's process runs as root"
say "api healthy, its process runs as uid $uid, restart policy $(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$api")"
if docker compose exec -T api touch /app/models/probe 2>/dev/null; then fail "models are writable by the api"; fi

"$PYTHON" - "$REPO/data" "$WORK/digits" <<'EOF'
import sys
from pathlib import Path

from PIL import Image

from trainer.data import load_tensors

images, labels = load_tensors(Path(sys.argv[1]), train=False)
for i in range(5):  # the first MNIST test digits: 7 2 1 0 4
    Image.fromarray(images[i].numpy()).save(Path(sys.argv[2]) / f"{i}-{int(labels[i])}.png")
EOF
for png in "$WORK"/digits/*.png; do
    expected=${png##*-}
    expected=${expected%.png}
    cp "$png" "$WORK/digit.png"
    answer=$(cd "$WORK" && curl -sS --fail-with-body -F file=@digit.png "http://localhost:$API_PORT/predict") ||
        fail "POST /predict: $answer"
    verdict=$(EXPECTED=$expected "$PYTHON" -c '
import json, math, os, sys
answer, expected = json.load(sys.stdin), int(os.environ["EXPECTED"])
probs = answer["probabilities"]
assert len(probs) == 10 and math.isclose(sum(probs), 1, abs_tol=1e-3), answer
assert answer["digit"] == expected, f"expected {expected}, got {answer}"
print("digit %d: answered %d, confidence %.3f" % (expected, answer["digit"], answer["confidence"]))
' <<<"$answer") || fail "wrong answer for $(basename "$png")"
    say "$verdict"
done

reader=$(curl -sS --fail-with-body "http://localhost:$API_PORT/model" | "$PYTHON" -c '
import json, sys
line_reader = json.load(sys.stdin)["line_reader"]
assert line_reader, "GET /model: no line reader"
print(line_reader["path"])
') || fail "the api serves no line reader for /read"
say "line reader served: $reader"

say "second docker compose up --wait: must not train again"
docker compose up --wait --wait-timeout 300 >"$WORK/up2.log" 2>&1 || { cat "$WORK/up2.log" >&2; fail "second up"; }
trained=$(docker compose logs --no-color trainer)
for file in mnist_cnn.pth mnist_lines.pth; do
    grep -q "$file is there already, not training" <<<"$trained" || fail "the second up trained $file again"
done

say "docker compose down -v"
docker compose down -v --remove-orphans >"$WORK/down.log" 2>&1 || { cat "$WORK/down.log" >&2; fail "down"; }
UP_DONE=""
[ -z "$(docker ps -aq)" ] || fail "containers left after down"
[ -z "$(docker volume ls -q)" ] || fail "volumes left after down -v"
