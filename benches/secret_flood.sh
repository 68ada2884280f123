#!/usr/bin/env bash
# Memory of `oauth-toolkit serve` (release) under a flood of failed client
# authentications: wrk posts client_credentials requests with a wrong secret for a new,
# unknown client id each time (every one costs a full Argon2 check — the decoy that hides
# which ids exist — and no per-client throttle applies), CONN connections for DURATION
# seconds, while the server's RSS (VmRSS of /proc/PID/status) is sampled every second.
# Prints the RSS before, the peak during, and 5 s after the flood, and the statuses.
#
#   benches/secret_flood.sh
#   DURATION=60 CONN=2 benches/secret_flood.sh
#   BIN=/tmp/oauth-toolkit-before benches/secret_flood.sh   # another build
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
DURATION=${DURATION:-60}
CONN=${CONN:-32}
PORT=39495
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin oauth-toolkit >&2
  BIN=target/release/oauth-toolkit
fi
export DATABASE_URL="sqlite://$WORK/flood.db" RUST_LOG=warn
"$BIN" migrate >/dev/null
"$BIN" serve --bind 127.0.0.1:$PORT 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 50); do curl -s -o /dev/null "$BASE/" && break; sleep 0.2; done
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER/status"; }
cat > "$WORK/flood.lua" <<'LUA'
local threads = {}
setup = function(thread) table.insert(threads, thread) end
statuses = {}
local n = 0
init = function() math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16)) end
request = function()
  n = n + 1
  local body = "grant_type=client_credentials&client_id=flood-" .. math.random(1e9) .. "-" .. n
    .. "&client_secret=not-the-secret"
  return wrk.format("POST", "/o/token/",
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary)
  local all = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do all[status] = (all[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(all) do table.insert(parts, status .. ": " .. count) end
  table.sort(parts)
  io.write(string.format("requests %d (%s), timeouts %d\n", summary.requests,
    table.concat(parts, ", "), summary.errors.timeout))
end
LUA
before=$(rss)
peak=$before
( while kill -0 "$SERVER" 2>/dev/null; do rss; echo; sleep 1; done ) >"$WORK/rss.txt" &
SAMPLER=$!
wrk -t2 -c"$CONN" -d"${DURATION}s" --timeout 30s -s "$WORK/flood.lua" "$BASE/o/token/" >"$WORK/wrk.txt"
sleep 5
after=$(rss)
kill "$SAMPLER" 2>/dev/null || true
peak=$(sort -n "$WORK/rss.txt" | tail -n 1)
printf '| connections | seconds | RSS before (MB) | peak (MB) | 5 s after (MB) | wrk |\n|---:|---:|---:|---:|---:|---|\n'
printf '| %s | %s | %s | %s | %s | %s |\n' "$CONN" "$DURATION" "$before" "$peak" "$after" "$(grep -E '^requests|Requests/sec' "$WORK/wrk.txt" | tr '\n' ' ')"
