#!/usr/bin/env bash
# The container checks, from a clean clone (called by .ci/run; runs alone too):
#   1. installs Docker's engine, compose and debootstrap from Debian when missing, and starts
#      dockerd (vfs storage driver) unless one answers;
#   2. builds the base images locally (.ci/base-images.sh: no image registry is reachable);
#   3. builds the release binary and packs it: docker build --target prebuilt;
#   4. runs the image as the README says (--ephemeral --dev-login --seed), waits for its health
#      check, and runs a code flow with PKCE against it from the host;
#   5. runs the Python example (pytest) against the binary and the image, and the TypeScript
#      one (Testcontainers for Node) against the image; the Java one needs Maven Central;
#   6. runs docker-compose.testing.yml: a relying party in a second container signs in through
#      the browser-facing URL and calls the token endpoint through the container network;
#   7. runs docker-compose.yml: Lanyard on PostgreSQL, healthy after PostgreSQL is;
# and tears everything down, also on failure. Prints the time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"

IMAGE=lanyard:ci
PORT="${LANYARD_CI_PORT:-18080}"   # the single container's host port (8080 may be a dev server's)
SINGLE=lanyard-ci-single
STACKS=(lanyardci-testing lanyardci-postgres)
STARTED_DOCKERD=""
export LANYARD_IMAGE=$IMAGE POSTGRES_IMAGE=lanyard-ci/postgres:15 PYTHON_IMAGE=lanyard-ci/python:3

started_at=$(date +%s)
phase_at=$started_at
timings=()
phase() {
  local now
  now=$(date +%s)
  if [[ -n "${current_phase:-}" ]]; then timings+=("$(printf '%5ss  %s' $((now - phase_at)) "$current_phase")"); fi
  current_phase="$1"
  phase_at=$now
  echo "== containers: $1"
}

compose() {
  local project=$1 file=$2
  shift 2
  docker-compose -p "$project" -f "$file" "$@"
}

teardown() {
  local status=$?
  set +e
  if ((status != 0)); then
    echo "== containers: FAILED in phase '${current_phase:-?}'; logs follow"
    docker logs --tail 50 "$SINGLE" 2>&1 | sed 's/^/single | /'
    compose "${STACKS[0]}" docker-compose.testing.yml logs --no-color --tail 50 2>&1
    compose "${STACKS[1]}" docker-compose.yml logs --no-color --tail 50 2>&1
  fi
  docker rm -f -v "$SINGLE" >/dev/null 2>&1
  compose "${STACKS[0]}" docker-compose.testing.yml down -v --remove-orphans >/dev/null 2>&1
  compose "${STACKS[1]}" docker-compose.yml down -v --remove-orphans >/dev/null 2>&1
  if [[ -n "$STARTED_DOCKERD" ]]; then
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
  fi
  phase "done"
  printf '%s\n' "${timings[@]}"
  echo "== containers: $(($(date +%s) - started_at))s in all, $( ((status == 0)) && echo passed || echo FAILED)"
  exit "$status"
}
trap teardown EXIT

# Waits until `docker inspect` reports the container healthy; fails on unhealthy or timeout.
wait_healthy() {
  local container=$1 status
  for _ in $(seq 1 120); do
    status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$container")
    case "$status" in
      healthy) return 0 ;;
      unhealthy | exited | dead)
        docker inspect -f '{{json .State.Health}}' "$container"
        return 1
        ;;
    esac
    sleep 1
  done
  echo "$container is not healthy after 120 s (last: $status)"
  return 1
}

# Reads one field of a JSON document on stdin ("a.b" for nested fields).
json_field() {
  python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[k]
print(v if isinstance(v,str) else json.dumps(v))' "$1"
}

phase "system packages"
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

phase "docker engine"
if ! docker info >/dev/null 2>&1; then
  # vfs: the storage driver that works where overlay mounts are not allowed.
  dockerd --storage-driver=vfs >/tmp/lanyard-ci-dockerd.log 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 30 /tmp/lanyard-ci-dockerd.log; exit 1; }
fi
for port in "$PORT" 8080 9999; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use on this machine; the container checks need it free"
    exit 1
  fi
done

phase "base images"
bash .ci/base-images.sh

phase "cargo build --release"
cargo build --release --locked --bin lanyard

phase "docker build --target prebuilt"
docker build -q --target prebuilt -t "$IMAGE" . >/dev/null
docker image ls "$IMAGE" --format 'image {{.Repository}}:{{.Tag}}: {{.Size}}'

phase "docker run, until /readyz answers"
run_started=$(date +%s%N)
docker run -d --name "$SINGLE" -p "$PORT:8080" -e "LANYARD_ISSUER=http://localhost:$PORT" \
  -v "$PWD/examples/lanyard-seed.toml:/seed.toml:ro" "$IMAGE" --ephemeral --dev-login --seed /seed.toml >/dev/null
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
  if [[ "$(docker inspect -f '{{.State.Running}}' "$SINGLE")" != true ]]; then docker logs "$SINGLE"; exit 1; fi
  sleep 0.05
done
echo "ready $(((($(date +%s%N) - run_started) / 1000000))) ms after docker run"

phase "health check"
wait_healthy "$SINGLE"
docker inspect -f '{{(index .State.Health.Log 0).Output}}' "$SINGLE"

phase "code flow from the host (dev-login, PKCE)"
base="http://localhost:$PORT"
verifier=$(head -c 48 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
redirect_uri=http://127.0.0.1:9999/cb
location=$(curl -sS -o /dev/null -w '%{redirect_url}' "$base/authorize?response_type=code&client_id=web&redirect_uri=http%3A%2F%2F127.0.0.1%3A9999%2Fcb&scope=openid%20profile%20email&state=ci-state&nonce=ci-nonce&login_hint=alice&code_challenge=$challenge&code_challenge_method=S256")
[[ "$location" == "$redirect_uri?"* ]] || { echo "authorize did not redirect to the client: '$location'"; exit 1; }
code=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["code"][0])' "$location")
tokens=$(curl -sS -f -u web:web-secret "$base/token" -d grant_type=authorization_code -d "code=$code" \
  -d "redirect_uri=$redirect_uri" -d "code_verifier=$verifier")
access_token=$(json_field access_token <<<"$tokens")
userinfo=$(curl -sS -f -H "Authorization: Bearer $access_token" "$base/userinfo")
echo "userinfo: $userinfo"
[[ "$(json_field email <<<"$userinfo")" == alice@example.test ]] || { echo "userinfo is not alice's"; exit 1; }

phase "python example (pytest: the binary, then the image)"
env -u LANYARD_IMAGE bash examples/python/run.sh
LANYARD_IMAGE=$IMAGE bash examples/python/run.sh

phase "node example (TypeScript, Testcontainers)"
# Testcontainers' reaper is an image from Docker Hub; the tests remove their container.
if command -v npm >/dev/null 2>&1; then
  TESTCONTAINERS_RYUK_DISABLED=true LANYARD_IMAGE=$IMAGE bash examples/node/run.sh
else
  echo "skipped: no Node.js on this machine"
fi

docker rm -f -v "$SINGLE" >/dev/null

phase "docker-compose.testing.yml (split issuer)"
compose "${STACKS[0]}" docker-compose.testing.yml up -d --no-build
wait_healthy "$(compose "${STACKS[0]}" docker-compose.testing.yml ps -q lanyard)"
wait_healthy "$(compose "${STACKS[0]}" docker-compose.testing.yml ps -q rp)"
# The host's curl plays the browser: the relying party sends it to http://localhost:8080, and
# Lanyard sends it back to the relying party with a code, which it redeems through the
# container network.
result=$(curl -sS -f -L "http://localhost:9999/login?login_hint=alice")
echo "relying party: $result"
[[ "$(json_field signed_in <<<"$result")" == true ]] || { echo "the relying party did not sign alice in"; exit 1; }
[[ "$(json_field token_endpoint <<<"$result")" == http://lanyard:8080/token ]] || { echo "token endpoint is not the back channel"; exit 1; }
compose "${STACKS[0]}" docker-compose.testing.yml down -v --remove-orphans

phase "docker-compose.yml (PostgreSQL)"
compose "${STACKS[1]}" docker-compose.yml up -d --no-build
wait_healthy "$(compose "${STACKS[1]}" docker-compose.yml ps -q postgres)"
wait_healthy "$(compose "${STACKS[1]}" docker-compose.yml ps -q lanyard)"
discovery=$(curl -sS -f http://localhost:8080/.well-known/openid-configuration)
[[ "$(json_field issuer <<<"$discovery")" == http://localhost:8080 ]]
[[ "$(json_field token_endpoint <<<"$discovery")" == http://lanyard:8080/token ]]
compose "${STACKS[1]}" docker-compose.yml logs --no-color lanyard | grep -q 'postgres://lanyard:' ||
  { echo "Lanyard did not say it runs on PostgreSQL"; exit 1; }
compose "${STACKS[1]}" docker-compose.yml down -v --remove-orphans
