#!/usr/bin/env bash
# HTTP load bench of `oauth-toolkit serve` (release) on 127.0.0.1 with wrk: the token
# endpoint (client_credentials, Argon2-hashed secret, HTTP Basic) and the introspection
# endpoint (client credentials, a live token), with keep-alive and with a new connection
# per request, on SQLite and — when PG_BENCH_URL names an empty database — PostgreSQL.
# Each case runs DURATION seconds (default 10) with CONN connections (default 32).
#
#   benches/provider_load.sh
#   PG_BENCH_URL=postgres://toolkit:toolkit@127.0.0.1:5432/toolkit_bench benches/provider_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
DURATION=${DURATION:-10}
CONN=${CONN:-32}
PORT=39480
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build --release --bin oauth-toolkit >&2
BIN=target/release/oauth-toolkit

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = os.getenv("BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("AUTH")
if os.getenv("CLOSE") == "1" then wrk.headers["Connection"] = "close" end
LUA

bench() { # label path body auth close
  local out
  out=$(BODY=$3 AUTH=$4 CLOSE=$5 wrk -t2 -c"$CONN" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$BASE$2")
  local rps p50 p99 non2xx errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '/ 50%/ {print $2}' <<<"$out")
  p99=$(awk '/ 99%/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  errors=$(awk '/Socket errors/ {print $0}' <<<"$out")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$DB" "$1" "$rps" "$p50" "$p99" "$non2xx${errors:+ ($errors)}"
}

run() { # database-url
  export DATABASE_URL=$1 RUST_LOG=warn
  "$BIN" migrate >/dev/null
  "$BIN" createapplication confidential client-credentials --client-id bench-cc \
      --client-secret bench-cc-secret-0123456789 --name bench >/dev/null
  "$BIN" createapplication confidential client-credentials --client-id bench-rs \
      --client-secret bench-rs-secret-0123456789 --name resource-server >/dev/null
  "$BIN" serve --bind 127.0.0.1:$PORT 2>"$WORK/server.log" &
  SERVER=$!
  for _ in $(seq 50); do curl -s -o /dev/null "$BASE/api/hello" && break; sleep 0.2; done
  local cc rs token
  cc="Basic $(printf 'bench-cc:bench-cc-secret-0123456789' | base64 -w0)"
  rs="Basic $(printf 'bench-rs:bench-rs-secret-0123456789' | base64 -w0)"
  token=$(curl -s -H "Authorization: $cc" -d grant_type=client_credentials -d scope=read "$BASE/o/token/" \
          | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  bench "token (client_credentials), keep-alive" /o/token/ "grant_type=client_credentials&scope=read" "$cc" 0
  bench "token (client_credentials), new connection per request" /o/token/ "grant_type=client_credentials&scope=read" "$cc" 1
  bench "introspection, keep-alive" /o/introspect/ "token=$token" "$rs" 0
  bench "introspection, new connection per request" /o/introspect/ "token=$token" "$rs" 1
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
}

printf '| database | case | requests/s | p50 | p99 | non-2xx |\n|---|---|---:|---:|---:|---:|\n'
DB=SQLite run "sqlite://$WORK/bench.db"
if [ -n "${PG_BENCH_URL:-}" ]; then
  PGOPTIONS='-c client_min_messages=warning' psql "$PG_BENCH_URL" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
  DB=PostgreSQL run "$PG_BENCH_URL"
fi
