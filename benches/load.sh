#!/usr/bin/env bash
# Load benchmark of Lanyard's hot endpoints (issue 8): builds the release binary, starts it
# on SQLite and on PostgreSQL with a benchmark seed, drives every scenario with wrk for a
# fixed duration and number of connections, and prints one table (requests/s, p50, p99,
# errors, server RSS and CPU) with every figure also given as a ratio that holds across
# machines: against the RSA-2048 signing ceiling from `openssl speed`, or against the same
# run's /healthz.
#
#   benches/load.sh                  # full run: 10 s per scenario, 32 connections
#   benches/load.sh --quick          # 2 s per scenario; exits non-zero on any error (CI smoke test)
#   benches/load.sh --no-wait        # don't wait for a quiet machine before each scenario
#   benches/load.sh --backend sqlite --duration 5 --connections 64
#   benches/load.sh --backend sqlite --only 'refresh|flow'    # some scenarios only
#   benches/load.sh --quick --only exchange                    # the token-exchange scenario
#   benches/load.sh --quick --only device                     # the device-poll scenario
#
# --no-build uses target/release/lanyard as it is. Environment: LANYARD_BIN (use this
# binary, skip the build), BENCH_PG_URL (PostgreSQL server, default
# postgres://postgres@127.0.0.1:5432; a database is created and dropped), and any LANYARD_*
# setting (e.g. LANYARD_WORKERS, LANYARD_DATABASE_MAX_CONNECTIONS, RUST_LOG) is passed to the
# servers. Needs curl, openssl, wrk (installed with apt-get when missing) and, for
# PostgreSQL, psql.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-0}"
}

DURATION=10
CONNECTIONS=32
QUICK=0
BACKENDS=()
BUILD=1
QUIET_WAIT=1 # before each scenario, wait for other processes to leave the cores idle
ONLY="" # an extended regex: run only the scenarios (and openssl/ephemeral figures) it matches
while (($#)); do
  case $1 in
    --quick) QUICK=1; DURATION=2; QUIET_WAIT=0 ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --connections) CONNECTIONS=${2:?--connections needs a number}; shift ;;
    --backend) BACKENDS+=("${2:?--backend needs sqlite or postgres}"); shift ;;
    --no-build) BUILD=0 ;;
    --no-wait) QUIET_WAIT=0 ;;
    --only) ONLY=${2:?--only needs a pattern}; shift ;;
    -h | --help) usage 0 ;;
    *) echo "load.sh: unknown argument $1" >&2; usage 2 ;;
  esac
  shift
done
((${#BACKENDS[@]})) || BACKENDS=(sqlite postgres)
for b in "${BACKENDS[@]}"; do
  [[ $b == sqlite || $b == postgres ]] || { echo "load.sh: unknown backend $b" >&2; exit 2; }
done
[[ $DURATION =~ ^[1-9][0-9]*$ && $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: --duration and --connections take positive integers" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LUA=$ROOT/benches/load.lua
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
CORES=$(nproc)
# The server's HTTP workers (LANYARD_WORKERS=0 or unset: one per core): the cores it gets.
SERVER_CORES=${LANYARD_WORKERS:-0}
((SERVER_CORES > 0 && SERVER_CORES <= CORES)) || SERVER_CORES=$CORES
# Stateless scenarios: one wrk thread per core; stateful ones: one thread per connection.
WRK_THREADS=$((CORES < CONNECTIONS ? CORES : CONNECTIONS))
CLK_TCK=$(getconf CLK_TCK)

log() { printf '\033[2m[load.sh] %s\033[0m\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk (apt-get)"
  SUDO=""
  ((EUID == 0)) || SUDO="sudo"
  $SUDO apt-get install -y wrk >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } \
    || die "cannot install wrk: apt-get install wrk"
fi
for tool in curl openssl base64; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
if [[ " ${BACKENDS[*]} " == *" postgres "* ]]; then
  command -v psql >/dev/null || die "psql is required for the PostgreSQL run (or pass --backend sqlite)"
fi

# --- clean-up: every server we started, the database, the temp dir -------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lanyard-bench.XXXXXX")
PIDS=() # processes this script started and has not yet waited for
PG_DB=""
forget() {
  local pid keep=()
  for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n $PG_DB ]]; then
    psql -q -X "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
      || echo "load.sh: could not drop database $PG_DB" >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------------
if [[ -n ${LANYARD_BIN:-} ]]; then
  BIN=$LANYARD_BIN
elif ((BUILD)); then
  log "cargo build --release --bin lanyard"
  (cd "$ROOT" && cargo build --release --bin lanyard --quiet) || die "release build failed"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/lanyard
else
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/lanyard
fi
[[ -x $BIN ]] || die "no binary at $BIN"
REVISION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# --- keys and seed -------------------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/es256.pem" 2>/dev/null

CLIENT_ID=bench
CLIENT_SECRET=bench-client-secret-not-for-production
INTROSPECT_ID=bench-introspect
INTROSPECT_SECRET=bench-introspect-secret-not-for-production
DEVICE_ID=bench-device
API_RS=https://rs256.bench.test
API_ES=https://es256.bench.test
# Token exchange (RFC 8693): the RS256 API exchanges its users' tokens for this one's.
API_DOWN=https://downstream.bench.test
EXCHANGE_GRANT=urn:ietf:params:oauth:grant-type:token-exchange
ACCESS_TOKEN_TYPE=urn:ietf:params:oauth:token-type:access_token
REDIRECT=http://127.0.0.1:9/cb
REDIRECT_ENC=http%3A%2F%2F127.0.0.1%3A9%2Fcb
# RFC 7636 appendix B's pair: every code is new, the pair can stay fixed.
VERIFIER=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk
CHALLENGE=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM

SEED=$WORK/seed.toml
cat >"$SEED" <<EOF
# Benchmark seed written by benches/load.sh: fixed development secrets, keys generated per run.
[[users]]
username = "bench"
password = "bench-password-not-for-production"
email = "bench@example.test"
email_verified = true
name = "Bench User"

[[apis]]
identifier = "$API_RS"
name = "Bench RS256"
scopes = ["read:rs"]
signing_alg = "RS256"
introspection_client_id = "$INTROSPECT_ID"
token_exchange_audiences = ["$API_DOWN"]

[[apis]]
identifier = "$API_ES"
name = "Bench ES256"
scopes = ["read:es"]
signing_alg = "ES256"
introspection_client_id = "$INTROSPECT_ID"

[[apis]]
identifier = "$API_DOWN"
name = "Bench downstream (token exchange)"
scopes = ["read:rs"]
signing_alg = "RS256"

[[clients]]
client_id = "$CLIENT_ID"
client_name = "Bench web app and machine"
client_secret = "$CLIENT_SECRET"
redirect_uris = ["$REDIRECT"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scope = "openid profile email offline_access read:rs read:es"
default_api = "$API_RS"
first_party = true

[[clients]]
client_id = "$DEVICE_ID"
client_name = "Bench device (RFC 8628)"
token_endpoint_auth_method = "none"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code"]
scope = "openid read:rs"
default_api = "$API_RS"

[[clients]]
client_id = "$INTROSPECT_ID"
client_name = "Bench APIs' introspection client"
client_secret = "$INTROSPECT_SECRET"
grant_types = ["client_credentials", "$EXCHANGE_GRANT"]
scope = ""

[[keys]]
alg = "RS256"
pem = '''
$(cat "$WORK/rs256.pem")
'''

[[keys]]
alg = "ES256"
pem = '''
$(cat "$WORK/es256.pem")
'''
EOF

CLIENT_BASIC="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
INTROSPECT_BASIC="Basic $(printf '%s:%s' "$INTROSPECT_ID" "$INTROSPECT_SECRET" | base64 -w0)"
FLOW_SCOPE=openid%20profile%20email%20read%3Ars
REFRESH_SCOPE=openid%20profile%20email%20offline_access%20read%3Ars
authorize_path() {
  printf '/authorize?response_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=bench&nonce=bench&code_challenge=%s&code_challenge_method=S256' \
    "$CLIENT_ID" "$REDIRECT_ENC" "$1" "$CHALLENGE"
}
TOKEN_CODE_BODY="grant_type=authorization_code&redirect_uri=$REDIRECT_ENC&code_verifier=$VERIFIER"

# --- helpers -------------------------------------------------------------------------------
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# One GET /readyz over bash's /dev/tcp (no process to spawn: fine-grained start timing).
# The server binds before it opens the database, so once connected this waits for the answer.
probe_ready() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    IFS= read -r -t 30 line <&3 || exit 1
    [[ $line == "HTTP/1.1 200"* ]]
  ) 2>/dev/null
}

rss_kb() { # VmRSS / VmHWM of a process, kB
  local key value _
  while read -r key value _; do
    [[ $key == "$2:" ]] && { echo "$value"; return; }
  done <"/proc/$1/status"
  echo 0
}

cpu_ticks() { # user + system time of every thread of a process, clock ticks
  local -a f
  read -r -a f <"/proc/$1/stat"
  echo $((f[13] + f[14]))
}

now_ns() { date +%s%N; }

machine_ticks() { # busy clock ticks of the whole machine, every core
  local _ user nice system irq softirq steal
  read -r _ user nice system _ _ irq softirq steal _ </proc/stat
  echo $((user + nice + system + irq + softirq + steal))
}

# PostgreSQL's share: the backends serving this run's database (the server's pool).
declare -A DB_T0=()
pg_backends() {
  [[ -n $PG_DB ]] || return 0
  psql -qAtX "$PG_URL/postgres" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$PG_DB'" 2>/dev/null || true
}
db_snapshot() {
  local pid
  DB_T0=()
  for pid in $(pg_backends); do DB_T0[$pid]=$(cpu_ticks "$pid" 2>/dev/null || echo 0); done
}
db_ticks_since() {
  local pid t total=0
  for pid in $(pg_backends); do
    t=$(cpu_ticks "$pid" 2>/dev/null) || continue
    total=$((total + t - ${DB_T0[$pid]:-0}))
  done
  echo "$total"
}

CHILD_MS=0
children_ms() { # CHILD_MS = CPU time of this shell's reaped children (wrk), milliseconds
  # Not in $(…): `times` must run in this shell to see its children.
  times >"$WORK/times"
  CHILD_MS=$(awk 'NR == 2 { split($0, a, /[ms]+/); printf "%d", (a[1] * 60 + a[2] + a[3] * 60 + a[4]) * 1000 }' "$WORK/times")
}

# Waits (up to 3 minutes) until the machine is quiet: the cores are shared with whatever
# else runs (builds, tests), and a busy machine skews every figure. The 'oth' column shows
# what remained.
wait_quiet() {
  ((QUIET_WAIT)) || return 0
  local deadline=$((SECONDS + 180)) a b warned=0
  while ((SECONDS < deadline)); do
    a=$(machine_ticks)
    sleep 1
    b=$(machine_ticks)
    # Busy cores over that second, with the idle server's own share (negligible) included.
    ((b - a < CLK_TCK * 15 / 100)) && return 0
    ((warned++)) || log "waiting for the machine to be quiet ($(awk -v t=$((b - a)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }') cores busy)"
  done
  log "the machine stayed busy: measuring anyway (see the 'oth' column)"
}

selected() { [[ -z $ONLY || $1 =~ $ONLY ]]; }

SERVER_PID=""
PORT=""
BASE=""
# start_server NAME DATABASE_URL: starts Lanyard (seeded, dev-login) and waits for /readyz.
# The protocol recorder, on with dev-login, is turned off: it is not what is measured.
start_server() {
  PORT=$(free_port) || die "no free port"
  BASE=http://127.0.0.1:$PORT
  LANYARD_ACTIVITY_RECORDER=false "$BIN" --issuer "$BASE" --bind "127.0.0.1:$PORT" --database-url "$2" --seed "$SEED" --no-demo --dev-login serve \
    >"$WORK/$1.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local deadline=$((SECONDS + 120))
  until probe_ready "$PORT"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$WORK/$1.log" >&2; die "the $1 server exited during start-up"; }
    ((SECONDS < deadline)) || { tail -n 20 "$WORK/$1.log" >&2; die "the $1 server did not become ready"; }
    sleep 0.05
  done
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  forget "$SERVER_PID"
}

# A code for the signed-in browser (cookie $COOKIE), via /authorize.
authorize_code() {
  local location
  location=$(curl -s -o /dev/null -w '%{redirect_url}' -H "Cookie: lanyard_session=$COOKIE" "$BASE$(authorize_path "$1")")
  [[ $location == *"code="* ]] || die "authorize gave no code: $location"
  location=${location#*code=}
  echo "${location%%&*}"
}

json_field() { # json_field NAME: a top-level string member of the JSON on stdin
  sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}

# --- results -------------------------------------------------------------------------------
declare -A RPS P50 P99 ERRORS RSS_PEAK CPU DB_CPU WRK_CPU OTHER_CPU NOTE STEPS
ROWS=()
TOTAL_ERRORS=0

# measure SCENARIO BACKEND THREADS CONNECTIONS [VAR=VALUE…]: one wrk run with load.lua.
measure() {
  local scenario=$1 backend=$2 threads=$3 conns=$4 key="$1|$2"
  shift 4
  selected "$scenario" || return 0
  wait_quiet
  log "$backend: $scenario (${DURATION}s, $conns connections)"
  local peak_file=$WORK/peak sampler cpu0 cpu1 all0 all1 wrk0 wrk1 db t0 t1 out line
  echo 0 >"$peak_file"
  (
    max=0
    while kill -0 "$SERVER_PID" 2>/dev/null; do
      v=$(rss_kb "$SERVER_PID" VmRSS)
      ((v > max)) && { max=$v; echo "$max" >"$peak_file"; }
      sleep 0.1
    done
  ) &
  sampler=$!
  PIDS+=("$sampler")
  db_snapshot
  children_ms
  cpu0=$(cpu_ticks "$SERVER_PID") all0=$(machine_ticks) wrk0=$CHILD_MS
  t0=$(now_ns)
  out=$(env "$@" wrk -t "$threads" -c "$conns" -d "${DURATION}s" --timeout 2s -s "$LUA" "$BASE" 2>&1) || true
  t1=$(now_ns)
  cpu1=$(cpu_ticks "$SERVER_PID") all1=$(machine_ticks)
  children_ms
  wrk1=$CHILD_MS
  db=$(db_ticks_since)
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  forget "$sampler"
  line=$(grep '^BENCH ' <<<"$out" || true)
  if [[ -z $line ]]; then
    printf '%s\n' "$out" >&2
    die "wrk gave no result for $scenario on $backend"
  fi
  local -A res=()
  local pair
  for pair in ${line#BENCH }; do res[${pair%%=*}]=${pair#*=}; done
  local errors=$((res[socket_errors] + (res[checked] ? res[app_errors] : res[status_errors])))
  local count=${res[requests]} p50=${res[p50_us]} p99=${res[p99_us]}
  if ((res[iterations] > 0 && res[it_p50_us] > 0)); then # the flow: one row per iteration
    count=${res[iterations]} p50=${res[it_p50_us]} p99=${res[it_p99_us]}
  fi
  ((count > 0)) || errors=$((errors + 1))
  RPS[$key]=$(awk -v n="$count" -v us="${res[duration_us]}" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
  P50[$key]=$(awk -v v="$p50" 'BEGIN { printf "%.2f", v / 1000 }')
  P99[$key]=$(awk -v v="$p99" 'BEGIN { printf "%.2f", v / 1000 }')
  ERRORS[$key]=$errors
  RSS_PEAK[$key]=$(($(cat "$peak_file") / 1024))
  CPU[$key]=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", t / hz / (ns / 1e9) }')
  # Cores used by wrk, and by everything else on the machine (a busy machine skews figures).
  WRK_CPU[$key]=$(awk -v ms=$((wrk1 - wrk0)) -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ms / 1e3 / (ns / 1e9) }')
  DB_CPU[$key]=-
  [[ $backend == postgres ]] && DB_CPU[$key]=$(awk -v t="$db" -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", t / hz / (ns / 1e9) }')
  OTHER_CPU[$key]=$(awk -v all=$((all1 - all0)) -v srv=$((cpu1 - cpu0 + db)) -v hz="$CLK_TCK" -v w="${WRK_CPU[$key]}" -v ns=$((t1 - t0)) \
    'BEGIN { o = (all - srv) / hz / (ns / 1e9) - w; printf "%.2f", o < 0 ? 0 : o }')
  TOTAL_ERRORS=$((TOTAL_ERRORS + errors))
  ROWS+=("$key")
  STEPS[$key]=$(sed -n 's/^BENCH_STEPS //p' <<<"$out")
  if ((errors)); then
    grep '^BENCH_LAST_ERROR ' <<<"$out" | sed 's/^BENCH_LAST_ERROR /  last error: /' >&2 || true
    grep -E 'Non-2xx|Socket errors' <<<"$out" | sed 's/^/  /' >&2 || true
  fi
}

# --- the machine's crypto ceiling ----------------------------------------------------------
RSA_1="" EC_1="" RSA_N="" EC_N=""
speed() { # speed [-multi N]: "RSA-2048 sign/s  ECDSA-P256 sign/s"
  openssl speed "$@" -seconds "$((QUICK ? 1 : 3))" rsa2048 ecdsap256 2>/dev/null |
    awk '/^rsa 2048 bits/ { rsa = $(NF-1) } /ecdsa \(nistp256\)/ { ec = $(NF-1) } END { printf "%.0f %.0f", rsa, ec }'
}
if selected "openssl ceiling"; then
  wait_quiet
  log "openssl speed rsa2048 ecdsap256 (1 core, then $SERVER_CORES)"
  read -r RSA_1 EC_1 <<<"$(speed)"
  if ((SERVER_CORES > 1)); then
    wait_quiet
    read -r RSA_N EC_N <<<"$(speed -multi "$SERVER_CORES")"
  else
    RSA_N=$RSA_1 EC_N=$EC_1
  fi
fi

# --- ephemeral start-to-ready with the seeded keys (best of 5) -----------------------------
START_MS=""
if selected "ephemeral start"; then
  wait_quiet
  for _ in 1 2 3 4 5; do
    port=$(free_port) || die "no free port"
    t0=$(now_ns)
    LANYARD_ACTIVITY_RECORDER=false "$BIN" --ephemeral --issuer "http://127.0.0.1:$port" --bind "127.0.0.1:$port" --seed "$SEED" --no-demo --dev-login \
      serve >"$WORK/ephemeral.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    until probe_ready "$port"; do
      kill -0 "$pid" 2>/dev/null || { tail -n 20 "$WORK/ephemeral.log" >&2; die "the ephemeral server exited"; }
      (($(now_ns) - t0 < 60000000000)) || die "the ephemeral server did not become ready"
      sleep 0.01 # only until the server binds: from then on the probe waits for the answer
    done
    ms=$((($(now_ns) - t0) / 1000000))
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
    if [[ -z $START_MS ]] || ((ms < START_MS)); then START_MS=$ms; fi
  done
  log "ephemeral start-to-ready: best of 5 = ${START_MS} ms"
fi

# --- the scenarios, per backend ------------------------------------------------------------
declare -A IDLE_RSS HWM END_RSS
for backend in "${BACKENDS[@]}"; do
  if [[ $backend == sqlite ]]; then
    url="sqlite://$WORK/lanyard.db"
  else
    db=lanyard_bench_$$_$RANDOM
    psql -q -X -v ON_ERROR_STOP=1 "$PG_URL/postgres" -c "CREATE DATABASE \"$db\"" >/dev/null \
      || die "cannot create database $db at $PG_URL"
    PG_DB=$db # from here on, dropped on exit
    url="$PG_URL/$PG_DB"
  fi
  log "$backend: starting Lanyard"
  start_server "$backend" "$url"
  sleep 1
  IDLE_RSS[$backend]=$(($(rss_kb "$SERVER_PID" VmRSS) / 1024))

  # A signed-in browser: one headless dev-login sign-in gives the session cookie.
  COOKIE=$(curl -s -o /dev/null -D - "$BASE$(authorize_path "$FLOW_SCOPE")&login_hint=bench" |
    sed -n 's/^[Ss]et-[Cc]ookie: lanyard_session=\([^;]*\).*/\1/p' | tr -d '\r')
  [[ -n $COOKIE ]] || die "dev-login gave no session cookie"
  # One refresh-token chain per connection (each refresh rotates its token).
  : >"$WORK/refresh_tokens"
  for _ in $(seq "$CONNECTIONS"); do
    code=$(authorize_code "$REFRESH_SCOPE")
    rt=$(curl -s -H "Authorization: $CLIENT_BASIC" -d "$TOKEN_CODE_BODY&code=$code" "$BASE/token" | json_field refresh_token)
    [[ -n $rt ]] || die "no refresh token from the code exchange"
    echo "$rt" >>"$WORK/refresh_tokens"
  done
  # One pending device code per connection (RFC 8628), never approved: each poll is answered
  # authorization_pending or slow_down, and each is one write to the database.
  : >"$WORK/device_codes"
  if selected "device-poll"; then
    for _ in $(seq "$CONNECTIONS"); do
      dc=$(curl -s -d "client_id=$DEVICE_ID&scope=openid" "$BASE/device_authorization" | json_field device_code)
      [[ -n $dc ]] || die "no device code from /device_authorization"
      echo "$dc" >>"$WORK/device_codes"
    done
  fi
  # A client_credentials token for introspection; a minted user token for userinfo.
  CC_TOKEN=$(curl -s -H "Authorization: $CLIENT_BASIC" -d "grant_type=client_credentials&resource=$API_RS" "$BASE/token" |
    json_field access_token)
  [[ -n $CC_TOKEN ]] || die "client_credentials gave no token"
  USER_TOKEN=$("$BIN" --issuer "$BASE" --database-url "$url" token mint --user bench --client "$CLIENT_ID" \
    --scope "openid profile email" 2>"$WORK/mint.log" | head -n 1) || { cat "$WORK/mint.log" >&2; die "token mint failed"; }
  [[ -n $USER_TOKEN ]] || die "token mint printed no token"
  # The subject of the token exchange: a user's token for the RS256 API (recorded under a grant).
  SUBJECT_TOKEN=$("$BIN" --issuer "$BASE" --database-url "$url" token mint --user bench --client "$CLIENT_ID" \
    --api "$API_RS" --scope "read:rs" 2>"$WORK/mint.log" | head -n 1) || { cat "$WORK/mint.log" >&2; die "token mint failed"; }
  [[ -n $SUBJECT_TOKEN ]] || die "token mint printed no subject token"
  EXCHANGE_BODY="grant_type=$EXCHANGE_GRANT&subject_token=$SUBJECT_TOKEN&subject_token_type=$ACCESS_TOKEN_TYPE&resource=$API_DOWN"
  curl -s -H "Authorization: $INTROSPECT_BASIC" -d "$EXCHANGE_BODY" "$BASE/token" | grep -q '"issued_token_type"' \
    || die "the token exchange gave no token: $(curl -s -H "Authorization: $INTROSPECT_BASIC" -d "$EXCHANGE_BODY" "$BASE/token")"

  T=$WRK_THREADS C=$CONNECTIONS
  measure "/healthz" "$backend" "$T" "$C" BENCH_MODE=static BENCH_PATH=/healthz
  measure "discovery" "$backend" "$T" "$C" BENCH_MODE=static BENCH_PATH=/.well-known/openid-configuration
  measure "JWKS" "$backend" "$T" "$C" BENCH_MODE=static BENCH_PATH=/jwks
  measure "client_credentials RS256" "$backend" "$T" "$C" BENCH_MODE=static BENCH_METHOD=POST BENCH_PATH=/token \
    BENCH_AUTH="$CLIENT_BASIC" BENCH_BODY="grant_type=client_credentials&resource=$API_RS"
  measure "client_credentials ES256" "$backend" "$T" "$C" BENCH_MODE=static BENCH_METHOD=POST BENCH_PATH=/token \
    BENCH_AUTH="$CLIENT_BASIC" BENCH_BODY="grant_type=client_credentials&resource=$API_ES"
  measure "SSO code flow (per iteration)" "$backend" "$C" "$C" BENCH_MODE=flow BENCH_AUTH="$CLIENT_BASIC" \
    BENCH_COOKIE="$COOKIE" BENCH_AUTHORIZE="$(authorize_path "$FLOW_SCOPE")" BENCH_TOKEN_BODY="$TOKEN_CODE_BODY"
  measure "refresh (rotating)" "$backend" "$C" "$C" BENCH_MODE=refresh BENCH_AUTH="$CLIENT_BASIC" \
    BENCH_REFRESH_FILE="$WORK/refresh_tokens"
  measure "introspection" "$backend" "$T" "$C" BENCH_MODE=introspect BENCH_AUTH="$INTROSPECT_BASIC" \
    BENCH_BODY="token=$CC_TOKEN"
  measure "userinfo" "$backend" "$T" "$C" BENCH_MODE=static BENCH_PATH=/userinfo BENCH_AUTH="Bearer $USER_TOKEN"
  # Verify the subject (signature, revocation, grant), sign and record the new token.
  measure "token-exchange" "$backend" "$T" "$C" BENCH_MODE=static BENCH_METHOD=POST BENCH_PATH=/token \
    BENCH_AUTH="$INTROSPECT_BASIC" BENCH_BODY="$EXCHANGE_BODY"
  measure "device-poll" "$backend" "$C" "$C" BENCH_MODE=device BENCH_CLIENT_ID="$DEVICE_ID" \
    BENCH_DEVICE_FILE="$WORK/device_codes"

  HWM[$backend]=$(($(rss_kb "$SERVER_PID" VmHWM) / 1024))
  END_RSS[$backend]=$(($(rss_kb "$SERVER_PID" VmRSS) / 1024))
  stop_server
  if [[ $backend == postgres ]]; then
    psql -q -X "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null && PG_DB=""
  fi
done

# --- the table -----------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a >= b) }'; }
rps() { echo "${RPS["$1|$2"]:-}"; }
has() { [[ -n ${RPS["$1|$2"]:-} ]]; }

for key in "${ROWS[@]}"; do
  scenario=${key%|*} backend=${key#*|}
  healthz=$(rps /healthz "$backend")
  case $scenario in
    /healthz) NOTE[$key]="1.00: the HTTP ceiling (wrk on the same cores)" ;;
    discovery | JWKS) NOTE[$key]="$(ratio "${RPS[$key]}" "$healthz") of /healthz (target >= 0.80)" ;;
    "client_credentials RS256")
      NOTE[$key]="$(ratio "${RPS[$key]}" "$RSA_N") of the RSA-2048 sign ceiling for $SERVER_CORES cores (target >= 0.75)" ;;
    "client_credentials ES256") NOTE[$key]="$(ratio "${RPS[$key]}" "$healthz") of /healthz (target >= 0.40)" ;;
    *) NOTE[$key]="$(ratio "${RPS[$key]}" "$healthz") of /healthz" ;;
  esac
  [[ -z ${STEPS[$key]} ]] || NOTE[$key]+="; p50/p99 ms: ${STEPS[$key]}"
done

row() { printf '| %-30s | %-8s | %8s | %7s | %7s | %6s | %9s | %19s | %s |\n' "$@"; }
echo
echo "Lanyard load benchmark, $REVISION: $CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), wrk on the same"
echo "cores, ${DURATION} s per scenario, $CONNECTIONS connections ($WRK_THREADS wrk threads; SSO flow, refresh and device-poll: one per connection)."
echo
row scenario backend "req/s" "p50 ms" "p99 ms" errors "RSS MB" "CPU srv/db/wrk/oth" "ratio"
row "$(printf -- '-%.0s' {1..30})" "--------" "-------:" "------:" "------:" "-----:" "--------:" "------------------:" "-----"
for key in "${ROWS[@]}"; do
  row "${key%|*}" "${key#*|}" "${RPS[$key]}" "${P50[$key]}" "${P99[$key]}" "${ERRORS[$key]}" "${RSS_PEAK[$key]}" \
    "${CPU[$key]}/${DB_CPU[$key]}/${WRK_CPU[$key]}/${OTHER_CPU[$key]}" "${NOTE[$key]}"
done
for backend in "${BACKENDS[@]}"; do
  row "server RSS idle/peak/end" "$backend" "" "" "" "" "${IDLE_RSS[$backend]}/${HWM[$backend]}/${END_RSS[$backend]}" "" \
    "MB (targets: idle <= 30, under load <= 100)"
done
if [[ -n $RSA_1 ]]; then
  row "openssl RSA-2048 sign/s" "1 core" "$RSA_1" "" "" "" "" "" ""
  row "openssl RSA-2048 sign/s" "$SERVER_CORES cores" "$RSA_N" "" "" "" "" "" "the ceiling for client_credentials RS256"
  row "openssl ECDSA-P256 sign/s" "1 core" "$EC_1" "" "" "" "" "" ""
  row "openssl ECDSA-P256 sign/s" "$SERVER_CORES cores" "$EC_N" "" "" "" "" "" ""
fi
[[ -z $START_MS ]] || row "ephemeral start-to-ready" "memory" "" "$START_MS" "" "" "" "" "ms, best of 5, seeded keys (target <= 150)"
echo
echo "req/s of the SSO flow counts iterations (authorize + token + userinfo); its p50/p99 are per iteration."
echo "device-poll: devices polling /token with pending device codes (one per connection, as fast as they can),"
echo "each answer authorization_pending or slow_down (a 400 by RFC 8628, counted as an error only if it is not one of them)."
echo "RSS MB: the server's peak during the scenario. CPU: cores used (user+system time / wall time) by the server,"
echo "by the PostgreSQL backends of its pool, by wrk, and by anything else (kernel softirq, other processes: above"
echo "~0.3, something else was running and the figures are disturbed)."

# --- targets -------------------------------------------------------------------------------
echo
echo "Targets (issue 8):"
verdict() { if "$@"; then echo "met"; else echo "MISSED"; fi; }
for backend in "${BACKENDS[@]}"; do
  h=$(rps /healthz "$backend")
  if has "client_credentials RS256" "$backend" && [[ -n $RSA_N ]]; then
    k="client_credentials RS256|$backend" r=$(ratio "$(rps "client_credentials RS256" "$backend")" "$RSA_N")
    echo "  $backend: client_credentials RS256 = $r of the $SERVER_CORES-core RSA-2048 ceiling (>= 0.75): $(verdict ge "$r" 0.75)" \
      "[the server used ${CPU[$k]} cores: $(ratio "${RPS[$k]}" "$(awk -v r="$RSA_1" -v c="${CPU[$k]}" 'BEGIN { print r * c }')") of the ceiling for those]"
  fi
  if has "client_credentials ES256" "$backend"; then
    e="client_credentials ES256|$backend" r=$(ratio "${RPS[$e]}" "$h")
    echo "  $backend: client_credentials ES256 = $r of /healthz (>= 0.40): $(verdict ge "$r" 0.40)"
    echo "  $backend: client_credentials ES256 p99 = ${P99[$e]} ms at $CONNECTIONS connections (<= 10): $(verdict ge 10 "${P99[$e]}")"
  fi
  for s in discovery JWKS; do
    has "$s" "$backend" || continue
    r=$(ratio "$(rps "$s" "$backend")" "$h")
    echo "  $backend: $s = $r of /healthz (>= 0.80): $(verdict ge "$r" 0.80)"
  done
  errs=0
  for key in "${ROWS[@]}"; do [[ ${key#*|} == "$backend" ]] && errs=$((errs + ERRORS[$key])); done
  echo "  $backend: errors = $errs (zero): $(verdict test "$errs" -eq 0)"
  echo "  $backend: idle RSS = ${IDLE_RSS[$backend]} MB (<= 30): $(verdict test "${IDLE_RSS[$backend]}" -le 30);" \
    "peak RSS = ${HWM[$backend]} MB (<= 100): $(verdict test "${HWM[$backend]}" -le 100)"
done
for s in "client_credentials RS256" "client_credentials ES256" "SSO code flow (per iteration)" "refresh (rotating)"; do
  if ! has "$s" sqlite || ! has "$s" postgres; then continue; fi
  a=$(rps "$s" sqlite) b=$(rps "$s" postgres)
  r=$(ratio "$((a < b ? a : b))" "$((a > b ? a : b))")
  echo "  SQLite vs PostgreSQL, $s: $a vs $b req/s, the slower at $r of the faster (>= 0.80): $(verdict ge "$r" 0.80)"
done
[[ -z $START_MS ]] || echo "  ephemeral start-to-ready = $START_MS ms (<= 150): $(verdict test "$START_MS" -le 150)"

if ((QUICK)); then
  if ((TOTAL_ERRORS)); then
    echo "load.sh --quick: $TOTAL_ERRORS errors (see the table)" >&2
    exit 1
  fi
  echo "load.sh --quick: every scenario answered without errors"
fi
