#!/usr/bin/env bash
# Build fedserver's container image with buildah and check it with podman, in embedded-database mode
# on a named volume (issue 15's acceptance):
#   healthy; an account made with `exec`; WebFinger and the actor served; SIGTERM stops it cleanly
#   (exit 0); the data survives a recreated container; a second container on the same volume is
#   refused with the clear message and changes nothing; ten `kill -9` + immediate restarts in a row
#   all recover.
# Prints what it measured and exits non-zero on the first failure. Needs root, buildah, podman and
# runc (`apt-get install -y buildah podman runc debootstrap`).
#
# The base: the digest-pinned registry image of the Dockerfile (ARG BASE_IMAGE) when it can be pulled;
# else a local equivalent made once with debootstrap (Debian bookworm, minbase, python3, a venv at
# /usr/local as in python:3.11-slim) and kept as $LOCAL_BASE. Environment:
#   BASE_IMAGE=REF      build on this image instead (no pull attempt)
#   REFRESH_BASE=1      make the local base again
#   IMAGE=REF           the name to build (default localhost/fedserver:check)
#   DEBIAN_MIRROR=URL   debootstrap's mirror (default http://deb.debian.org/debian)
# The HTTP checks run inside the container (`podman exec`, over its loopback, with the public Host
# header as Caddy sends it): the containers get no network at all (--network none).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/fedserver:check}
LOCAL_BASE=${LOCAL_BASE:-localhost/fedserver-base:bookworm-python3.11}
DOMAIN=check.fedserver.test
PASSWORD=correct-horse-battery-staple-1
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
RUN_OPTS=(--ulimit nofile=20000:20000 --ulimit nproc=1000:1000 --network none
          -e "FEDSERVER_INSTANCE__DOMAIN=$DOMAIN" -e FEDSERVER_LOGGING__FORMAT=text)
suffix="$(date +%s)-$$"
# podman's own complaints (here: no systemd for the health-check timers, which `podman healthcheck run`
# replaces) go to this file, not the screen.
PODMAN_LOG=/tmp/fedserver-check-podman.log
: >"$PODMAN_LOG"
NAME="fedserver-check-$suffix"
VOLUME="fedserver-check-$suffix"

say() { printf '%s\n' "$*"; }
ok() { printf 'ok    %s\n' "$*"; }
fail() {
  printf 'FAIL  %s\n' "$*" >&2
  if "${PODMAN[@]}" container exists "$NAME" 2>/dev/null; then
    printf -- '--- last lines of the container log:\n' >&2
    "${PODMAN[@]}" logs --tail 40 "$NAME" >&2 2>&1 || true
  fi
  exit 1
}
now() { printf '%s' "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
  "${PODMAN[@]}" rm --force --ignore --time 0 "$NAME" "$NAME-second" >/dev/null 2>&1 || true
  "${PODMAN[@]}" volume rm --force "$VOLUME" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for tool in buildah podman runc; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install -y buildah podman runc debootstrap)"
done
[ "$(id -u)" = 0 ] || fail "run as root (buildah --isolation chroot and podman with runc/cgroupfs as set up here)"

# ---------------------------------------------------------------------------------------------- base
make_local_base() {
  command -v debootstrap >/dev/null || fail "debootstrap is not installed and the registry base cannot be pulled"
  local root started
  root=$(mktemp -d /var/tmp/fedserver-base.XXXXXX)
  started=$(now)
  say "making the local base $LOCAL_BASE with debootstrap (once; kept in podman's image store)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/tmp/fedserver-debootstrap.log 2>&1 \
    || { tail -20 /tmp/fedserver-debootstrap.log >&2; rm -rf "$root"; fail "debootstrap failed"; }
  # python:3.11-slim has python3, pip and setuptools in /usr/local; a venv there gives the same.
  chroot "$root" /usr/bin/python3 -m venv /usr/local || { rm -rf "$root"; fail "python3 -m venv /usr/local failed"; }
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
         "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
  tar --numeric-owner -C "$root" -cf "$root.tar" .
  "${PODMAN[@]}" import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$root.tar" "$LOCAL_BASE" >/dev/null || { rm -rf "$root" "$root.tar"; fail "podman import of the local base failed"; }
  rm -rf "$root" "$root.tar"
  say "local base made in $(since "$started") s"
}

registry_base=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile | head -n1)
if [ -n "${BASE_IMAGE:-}" ]; then
  base=$BASE_IMAGE
  say "base: $base (BASE_IMAGE)"
elif buildah inspect --type image "$registry_base" >/dev/null 2>&1 \
     || timeout 300 buildah pull --quiet "$registry_base" >/dev/null 2>/tmp/fedserver-pull.log; then
  base=$registry_base
  say "base: $base (registry)"
else
  say "base: $registry_base cannot be pulled ($(tail -n1 /tmp/fedserver-pull.log | cut -c1-160))"
  if [ "${REFRESH_BASE:-}" = 1 ] && "${PODMAN[@]}" image exists "$LOCAL_BASE"; then
    "${PODMAN[@]}" rmi --force "$LOCAL_BASE" >/dev/null
  fi
  "${PODMAN[@]}" image exists "$LOCAL_BASE" || make_local_base
  base=$LOCAL_BASE
  say "base: $base (local, made with debootstrap)"
fi

# --------------------------------------------------------------------------------------------- build
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
build_args=(--build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version"
            --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
            --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
# The build fetches the locked wheels from PyPI: let it trust this machine's certificate store (which
# holds a TLS-inspecting proxy's CA where there is one).
mounts=()
[ -f /etc/ssl/certs/ca-certificates.crt ] && mounts=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
started=$(now)
buildah bud --isolation chroot --format docker --layers "${build_args[@]}" "${mounts[@]}" -t "$IMAGE" . \
  >/tmp/fedserver-build.log 2>&1 || { tail -30 /tmp/fedserver-build.log >&2; fail "buildah bud failed (log: /tmp/fedserver-build.log)"; }
build_seconds=$(since "$started")
size_mb=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f", $1 / 1000000 }')
say "built $IMAGE in $build_seconds s (log: /tmp/fedserver-build.log); image size $size_mb MB"

config() { "${PODMAN[@]}" image inspect --format "$1" "$IMAGE"; }
[ "$(config '{{.Config.User}}')" = "1000:1000" ] || fail "USER is $(config '{{.Config.User}}'), expected 1000:1000"
[ "$(config '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$version" ] || fail "no OCI version label"
config '{{json .Config.Healthcheck}}' | grep -q 'StartPeriod' || fail "no HEALTHCHECK with a start period"
tools=$("${PODMAN[@]}" run --rm "${RUN_OPTS[@]}" "$IMAGE" python3 -c '
import importlib.util, shutil
print(" ".join(m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m) or shutil.which(m)) or "none")' \
  2>>"$PODMAN_LOG") || fail "cannot run python3 in the image"
[ "$tools" = none ] || fail "build tools in the image: $tools"
ok "image: USER 1000:1000, OCI labels, HEALTHCHECK with a start period, no pip or setuptools"

# ----------------------------------------------------------------------------------------- the checks
run_container() { "${PODMAN[@]}" run --detach --name "$NAME" "${RUN_OPTS[@]}" -v "$VOLUME:/data" "$IMAGE" >/dev/null 2>>"$PODMAN_LOG"; }

# Runs the image's health check until it passes; prints the seconds it took.
wait_healthy() {
  local started=$1 deadline=$((SECONDS + ${2:-120})) state
  while [ "$SECONDS" -lt "$deadline" ]; do
    state=$("${PODMAN[@]}" inspect --format '{{.State.Status}}' "$NAME" 2>/dev/null || echo gone)
    [ "$state" = running ] || fail "the container is $state, not running"
    if "${PODMAN[@]}" healthcheck run "$NAME" >/dev/null 2>&1; then
      since "$started"
      return 0
    fi
    sleep 0.2
  done
  fail "not healthy after ${2:-120} s"
}

# GET a path inside the container with the public Host header (as Caddy forwards it); prints the body.
http_get() {
  "${PODMAN[@]}" exec "$NAME" python3 -c '
import sys, urllib.request
request = urllib.request.Request("http://127.0.0.1:8000" + sys.argv[1], headers={"Host": sys.argv[2], "Accept": sys.argv[3]})
print(urllib.request.urlopen(request, timeout=10).read().decode())' "$1" "$DOMAIN" "${2:-application/json}"
}

accounts() { "${PODMAN[@]}" exec "$NAME" fedserver account list --json | python3 -c 'import json, sys; print(" ".join(a["name"] for a in json.load(sys.stdin)))'; }

say "container $NAME on volume $VOLUME (embedded PostgreSQL)"
"${PODMAN[@]}" volume create "$VOLUME" >/dev/null
started=$(now)
run_container || fail "podman run failed"
first_healthy=$(wait_healthy "$started")
ok "healthy $first_healthy s after the first start (a new database: initdb and migrations)"

printf '%s\n' "$PASSWORD" | "${PODMAN[@]}" exec -i "$NAME" fedserver account create alice --password-stdin >/dev/null \
  || fail "fedserver account create alice --password-stdin (podman exec)"
ok "account alice made with podman exec ... fedserver account create alice --password-stdin"

actor_url=$(http_get "/.well-known/webfinger?resource=acct:alice@$DOMAIN" application/jrd+json \
  | python3 -c 'import json, sys; print(next(l["href"] for l in json.load(sys.stdin)["links"] if l["rel"] == "self"))') \
  || fail "WebFinger for alice@$DOMAIN"
[ "$actor_url" = "https://$DOMAIN/users/alice" ] || fail "WebFinger gave $actor_url"
http_get /users/alice application/activity+json | python3 -c '
import json, sys
actor = json.load(sys.stdin)
assert actor["id"] == sys.argv[1], actor["id"]
assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")' "$actor_url" || fail "the actor document"
ok "WebFinger answers for alice@$DOMAIN and the actor $actor_url is served with its key"

started=$(now)
"${PODMAN[@]}" stop --time 30 "$NAME" >/dev/null 2>>"$PODMAN_LOG" || fail "podman stop"
stop_seconds=$(since "$started")
code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit status $code after SIGTERM"
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q 'fedserver.server: stopped' || fail "no 'stopped' line in the log after SIGTERM"
mountpoint=$("${PODMAN[@]}" volume inspect --format '{{.Mountpoint}}' "$VOLUME")
[ ! -e "$mountpoint/postgres/postmaster.pid" ] || fail "postmaster.pid left behind: PostgreSQL was not stopped cleanly"
ok "SIGTERM (podman stop): stopped in $stop_seconds s, exit 0, PostgreSQL shut down cleanly"

"${PODMAN[@]}" rm "$NAME" >/dev/null 2>>"$PODMAN_LOG"
started=$(now)
run_container || fail "podman run (recreated container) failed"
recreated_healthy=$(wait_healthy "$started")
[ "$(accounts)" = alice ] || fail "accounts after recreating the container: '$(accounts)'"
http_get "/.well-known/webfinger?resource=acct:alice@$DOMAIN" application/jrd+json >/dev/null || fail "WebFinger after recreating"
if "${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q 'not properly shut down'; then
  fail "PostgreSQL ran crash recovery after a clean stop"
fi
ok "data kept across a recreated container (healthy in $recreated_healthy s, alice still there)"

second_err=$(mktemp)
if "${PODMAN[@]}" run --rm --name "$NAME-second" "${RUN_OPTS[@]}" -v "$VOLUME:/data" "$IMAGE" \
     fedserver account create carol >/dev/null 2>"$second_err"; then
  fail "a second container on the same volume made an account"
fi
grep -q 'docker compose exec' "$second_err" || { cat "$second_err" >&2; fail "the second container's message does not say docker compose exec"; }
! grep -q Traceback "$second_err" || { cat "$second_err" >&2; fail "the second container printed a traceback"; }
say "      second container said: $(grep -m1 '^fedserver: error' "$second_err")"
rm -f "$second_err"
"${PODMAN[@]}" healthcheck run "$NAME" >/dev/null 2>&1 || fail "the first container is unhealthy after the second one tried"
[ "$(accounts)" = alice ] || fail "accounts after the second container: '$(accounts)'"
if grep -qs 'shared memory block' "$mountpoint/postgres/log"; then
  fail "a second PostgreSQL was started on the live data directory (see $mountpoint/postgres/log)"
fi
ok "a second container on the same volume is refused (non-zero, 'docker compose exec'); carol does not exist"

say "ten kill -9 (podman kill -s KILL), each followed at once by podman start:"
times=()
for round in $(seq 1 10); do
  "${PODMAN[@]}" kill --signal KILL "$NAME" >/dev/null || fail "podman kill, round $round"
  "${PODMAN[@]}" wait "$NAME" >/dev/null 2>&1 || true
  started=$(now)
  "${PODMAN[@]}" start "$NAME" >/dev/null 2>>"$PODMAN_LOG" || fail "podman start after kill -9, round $round"
  seconds=$(wait_healthy "$started" 120)
  [ "$(accounts)" = alice ] || fail "round $round: accounts '$(accounts)'"
  times+=("$seconds")
  say "      round $round: healthy after $seconds s, alice still there"
done
ok "ten kill -9 + immediate restarts all recovered (seconds to healthy: ${times[*]})"

# The image carries what `fedserver backup` needs (pg_dump of the database's major version).
"${PODMAN[@]}" exec "$NAME" fedserver backup /data/check-backup.tar --json > /tmp/fedserver-check-backup.json \
  || fail "fedserver backup inside the container"
python3 -c '
import json, sys
summary = json.load(open(sys.argv[1]))
assert summary["counts"]["local_accounts"] >= 1, summary
print(summary["archive_bytes"], summary["pg_tool"])' /tmp/fedserver-check-backup.json > /tmp/fedserver-check-backup.txt \
  || fail "the backup summary"
"${PODMAN[@]}" exec "$NAME" rm /data/check-backup.tar
ok "fedserver backup runs in the container: $(cat /tmp/fedserver-check-backup.txt) (bytes, pg_dump)"

"${PODMAN[@]}" stop --time 30 "$NAME" >/dev/null 2>>"$PODMAN_LOG"
code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit status $code after the final SIGTERM"

# Images of earlier runs that this build replaced (untagged): keep the disk from filling up.
"${PODMAN[@]}" image prune --force >/dev/null 2>>"$PODMAN_LOG" || true

say ""
say "summary: build ${build_seconds} s, image ${size_mb} MB, first start healthy in ${first_healthy} s,"
say "         SIGTERM stop ${stop_seconds} s, recreated healthy in ${recreated_healthy} s,"
say "         after kill -9 healthy in: ${times[*]} s"
say "check-image: all checks passed"
