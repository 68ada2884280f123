#!/usr/bin/env bash
# HTTP load bench of `oauth-toolkit serve` (release) on 127.0.0.1 with wrk, every case as a
# ratio against the bare path of the same server measured right before and right after it
# (GET of an unknown path: routing, the request-count middleware, a 404; the machine's speed
# drifts within a run, so each case gets its own pair of bare runs), with keep-alive and
# with a new connection per request:
#   - the demo API `/api/hello` with a valid token, with an invalid one, and with a new
#     unknown token on every request (each one a database lookup),
#   - introspection of a live token (client authenticated with an Argon2-hashed secret),
#   - the token endpoint, client_credentials, with a hashed and with a plain secret,
# on SQLite and — when PG_BENCH_URL names an empty database — PostgreSQL.
# Each run takes DURATION seconds (default 4) with CONN connections (default 32).
# SEED_TOKENS=1000000 first fills the database with that many live access tokens.
#
#   benches/provider_load.sh
#   SEED_TOKENS=1000000 benches/provider_load.sh
#   BIN=/tmp/oauth-toolkit-0.1 benches/provider_load.sh
#   PG_BENCH_URL=postgres://toolkit:toolkit@127.0.0.1:5432/toolkit_bench benches/provider_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
DURATION=${DURATION:-4}
CONN=${CONN:-32}
SEED_TOKENS=${SEED_TOKENS:-0}
PORT=39480
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
# BIN=path/to/oauth-toolkit measures another build (e.g. the previous release) instead.
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin oauth-toolkit >&2
  BIN=target/release/oauth-toolkit
fi
if [ "$SEED_TOKENS" -gt 0 ]; then
  cargo build --release --example seed_expired_tokens --features sqlite,postgres >&2
fi

cat > "$WORK/req.lua" <<'LUA'
wrk.method = os.getenv("METHOD")
local body = os.getenv("BODY")
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("AUTH")
if auth ~= "" then wrk.headers["Authorization"] = auth end
if os.getenv("CLOSE") == "1" then wrk.headers["Connection"] = "close" end
if auth == "Bearer RANDOM" then
  local n = 0
  request = function()
    n = n + 1
    wrk.headers["Authorization"] = "Bearer unknown-" .. tostring(math.random(1e9)) .. "-" .. n
    return wrk.format()
  end
end
LUA

rate() { # method path body auth close -> "rps p50 p99 non2xx"
  local out
  out=$(METHOD=$1 BODY=$3 AUTH=$4 CLOSE=$5 wrk -t2 -c"$CONN" -d"${DURATION}s" --latency -s "$WORK/req.lua" "$BASE$2")
  local rps p50 p99 non2xx errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '/ 50%/ {print $2}' <<<"$out")
  p99=$(awk '/ 99%/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out"); non2xx=${non2xx:-0}
  errors=$(awk '/Socket errors/ {print "socket errors"}' <<<"$out")
  echo "$rps $p50 $p99 $non2xx${errors:+ ($errors)}"
}

bench() { # label method path body auth close
  local before after r
  before=$(rate GET /bench-bare-path "" "" "$6" | cut -d' ' -f1)
  r=$(rate "$2" "$3" "$4" "$5" "$6")
  after=$(rate GET /bench-bare-path "" "" "$6" | cut -d' ' -f1)
  local rps=${r%% *} rest=${r#* }
  local bare ratio
  bare=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.0f", (a + b) / 2 }')
  ratio=$(awk -v a="$rps" -v b="$bare" 'BEGIN { printf "%.0f %%", 100 * a / b }')
  local conn=keep-alive; [ "$6" = 1 ] && conn="new connection"
  read -r p50 p99 non2xx <<<"$rest"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$DB" "$1" "$conn" "$rps" "$bare" "$ratio" "$p50" "$p99" "$non2xx"
}

run() { # database-url
  export DATABASE_URL=$1 RUST_LOG=${RUST_LOG:-info}
  "$BIN" migrate >/dev/null
  "$BIN" createapplication confidential client-credentials --client-id bench-cc \
      --client-secret bench-cc-secret-0123456789 --name bench >/dev/null
  "$BIN" createapplication confidential client-credentials --client-id bench-plain \
      --client-secret bench-plain-secret-0123456789 --no-hash-client-secret --name plain >/dev/null
  "$BIN" createapplication confidential client-credentials --client-id bench-rs \
      --client-secret bench-rs-secret-0123456789 --name resource-server >/dev/null
  if [ "$SEED_TOKENS" -gt 0 ]; then
    target/release/examples/seed_expired_tokens "$1" "$SEED_TOKENS" live >&2
  fi
  "$BIN" serve --bind 127.0.0.1:$PORT 2>"$WORK/server.log" &
  SERVER=$!
  for _ in $(seq 50); do curl -s -o /dev/null "$BASE/" && break; sleep 0.2; done
  local cc plain rs token
  cc="Basic $(printf 'bench-cc:bench-cc-secret-0123456789' | base64 -w0)"
  plain="Basic $(printf 'bench-plain:bench-plain-secret-0123456789' | base64 -w0)"
  rs="Basic $(printf 'bench-rs:bench-rs-secret-0123456789' | base64 -w0)"
  token=$(curl -s -H "Authorization: $cc" -d grant_type=client_credentials -d scope=read "$BASE/o/token/" \
          | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  local cc_body="grant_type=client_credentials&scope=read"
  for close in 0 1; do
    bench "/api/hello, valid token" GET /api/hello "" "Bearer $token" $close
    bench "/api/hello, invalid token" GET /api/hello "" "Bearer not-a-token-0123456789abcdef" $close
    bench "/api/hello, a new unknown token each request" GET /api/hello "" "Bearer RANDOM" $close
    bench "introspection" POST /o/introspect/ "token=$token" "$rs" $close
    bench "token, client_credentials, hashed secret" POST /o/token/ "$cc_body" "$cc" $close
    bench "token, client_credentials, plain secret" POST /o/token/ "$cc_body" "$plain" $close
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  echo "server log: $(wc -c <"$WORK/server.log") bytes" >&2
}

printf '| database | case | connections | requests/s | bare path (mean of the runs before and after) | of bare | p50 | p99 | non-2xx |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n'
DB=SQLite run "sqlite://$WORK/bench.db"
if [ -n "${PG_BENCH_URL:-}" ]; then
  PGOPTIONS='-c client_min_messages=warning' psql "$PG_BENCH_URL" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
  DB=PostgreSQL run "$PG_BENCH_URL"
fi
