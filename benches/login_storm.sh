#!/usr/bin/env bash
# Login storm (issue 11, item 3): many concurrent wrong-password sign-ins for one account
# while /healthz is measured, to see that the throttle holds (passwords evaluated per window
# <= login_max_failures) and that argon2 work does not starve other requests.
#
#   benches/login_storm.sh                       # 64 attacking connections, 10 s
#   benches/login_storm.sh --connections 16 --duration 5
#
# LANYARD_BIN picks the binary (default: target/release/lanyard, built when missing).
# Prints the sign-in answers by status (401 = a password was evaluated, 429 = throttled)
# and /healthz latency (wrk, 4 connections). Needs curl and wrk. A measurement, never a
# pass/fail check.
set -euo pipefail
CONNECTIONS=64
DURATION=10
while (($#)); do
  case $1 in
    --connections) CONNECTIONS=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "login_storm.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${LANYARD_BIN:-$ROOT/target/release/lanyard}
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release --bin lanyard)
WORK=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
BASE=http://127.0.0.1:$PORT
cleanup() { [[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cat >"$WORK/seed.toml" <<'SEED'
[[users]]
username = "alice"
password = "alice-password"
SEED
"$BIN" --ephemeral --seed "$WORK/seed.toml" --issuer "$BASE" --bind "127.0.0.1:$PORT" --no-demo serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -fs "$BASE/readyz" >/dev/null && break; sleep 0.1; done
# One CSRF cookie and token (double submit: the same value in both) for every attempt.
TOKEN=$(curl -s -c "$WORK/jar" "$BASE/admin/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
[[ -n $TOKEN ]] || { echo "login_storm.sh: no CSRF token on the login page" >&2; exit 1; }
cat >"$WORK/storm.lua" <<LUA
wrk.method = "POST"
wrk.body = "csrf_token=$TOKEN&username=alice&password=wrong-password"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "lanyard_csrf=$TOKEN"
LUA
cat >>"$WORK/storm.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end
-- A global per thread (wrk gives each thread its own Lua state), read back in done().
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for status, n in pairs(c) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("sign-in answers %d: %d\n", status, n)) end
end
LUA
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/storm.lua" "$BASE/login" >"$WORK/storm.txt" 2>&1 &
STORM=$!
sleep 0.5
echo "== /healthz while $CONNECTIONS connections try passwords for one account (${DURATION}s)"
wrk -t1 -c4 -d"$((DURATION - 1))s" --latency "$BASE/healthz" | grep -E "Latency|50%|99%|Requests/sec"
wait "$STORM"
grep -E "sign-in answers|Requests/sec" "$WORK/storm.txt"
