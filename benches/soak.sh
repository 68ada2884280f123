#!/usr/bin/env bash
# Soak test of `oauth-toolkit serve` (release) on 127.0.0.1 (issue 12, item 8): DURATION
# seconds (default 600) of mixed load from examples/soak.rs — client-credentials tokens,
# authorization code + PKCE exchanges (a user signed in once through the login form,
# consent skipped), refreshes with rotation, introspection, GET /api/hello, RFC 7009
# revocations — while serve's background cleanup runs every CLEANUP_INTERVAL seconds
# (default 10). It fails (exit 1) on any 5xx, any unexpected answer, any token that does
# not introspect as expected at the end (live, revoked, rotated away), an RSS change of
# more than 10 % between the minute after a 5-minute warm-up (minute 6: the token cache
# keeps entries up to 300 s) and the last minute (runs of 420 s and more; shorter ones
# only print the RSS), or a server that does not exit 0 on SIGTERM. It prints the
# throughput per minute and the counts by kind.
# Access tokens live 3600 s, so that nothing expires unless the run is longer.
#
#   benches/soak.sh
#   DURATION=60 benches/soak.sh                 # a quick run
#   WORKERS=16 benches/soak.sh                  # concurrent workers (default 8)
#   BIN=/tmp/oauth-toolkit-0.1 benches/soak.sh  # another build of the server
#   PG_BENCH_URL=postgres://toolkit:toolkit@127.0.0.1:5432/toolkit_bench benches/soak.sh
#                                               # then also on that (emptied) database
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
WORKERS=${WORKERS:-8}
CLEANUP_INTERVAL=${CLEANUP_INTERVAL:-10}
PORT=39490
BASE=http://127.0.0.1:$PORT
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build --release --example soak >&2
DRIVER=$TARGET/release/examples/soak
# BIN=path/to/oauth-toolkit soaks another build (e.g. the previous release) instead.
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin oauth-toolkit >&2
  BIN=$TARGET/release/oauth-toolkit
fi

# The settings the server and the commands see: these and nothing from the caller's shell.
for v in $(env | sed -n 's/^\(OAUTH2_PROVIDER_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export OAUTH2_PROVIDER_ACCESS_TOKEN_EXPIRE_SECONDS=3600 RUST_LOG=${RUST_LOG:-info}

REDIRECT=http://127.0.0.1:9/callback
run() { # label database-url
  local log=$WORK/server-$1.log
  export DATABASE_URL=$2
  "$BIN" migrate >/dev/null
  "$BIN" createuser soak --password soak-password-0123456789 >/dev/null
  "$BIN" createapplication confidential client-credentials --client-id soak-cc \
      --client-secret soak-cc-secret-0123456789 --name soak-cc >/dev/null
  "$BIN" createapplication confidential authorization-code --client-id soak-code \
      --client-secret soak-code-secret-0123456789 --redirect-uris "$REDIRECT" \
      --skip-authorization --name soak-code >/dev/null
  "$BIN" serve --cleanup-interval "$CLEANUP_INTERVAL" --bind 127.0.0.1:$PORT 2>"$log" &
  SERVER=$!
  for _ in $(seq 100); do curl -s -o /dev/null "$BASE/" && break; sleep 0.1; done
  echo "== $1: ${DURATION} s, $WORKERS workers, cleanup every ${CLEANUP_INTERVAL} s"
  local status=0
  # Bounded in time: the load, then the final check (every token introspected once).
  timeout $((DURATION + 900)) "$DRIVER" --base "$BASE" --pid "$SERVER" --duration "$DURATION" \
      --workers "$WORKERS" --cc-client soak-cc:soak-cc-secret-0123456789 \
      --code-client soak-code:soak-code-secret-0123456789 --redirect-uri "$REDIRECT" \
      --user soak:soak-password-0123456789 || status=$?
  kill -TERM "$SERVER"
  local exit=0
  wait "$SERVER" || exit=$?
  SERVER=
  if [ "$exit" -ne 0 ]; then
    echo "FAIL: the server exited $exit on SIGTERM"
    status=1
  fi
  local runs rows
  runs=$(grep -c 'expired tokens cleared' "$log" || true)
  rows=$(grep 'expired tokens cleared' "$log" | sed -n 's/.* deleted=\([0-9]*\).*/\1/p' \
         | awk '{ s += $1 } END { print s + 0 }')
  echo "cleanup: $runs runs that deleted something, $rows rows deleted in all;" \
       "server log $(wc -c <"$log") bytes, $(grep -c ' ERROR \| WARN ' "$log" || true) warnings or errors"
  grep ' ERROR \| WARN ' "$log" | head -5 || true
  case $2 in sqlite://*) echo "database at the end: $(du -chL "${2#sqlite://}"* | tail -1 | cut -f1)";; esac
  if [ "$status" -ne 0 ]; then
    echo "server log (last lines):"; tail -20 "$log"
  fi
  return "$status"
}

result=0
run SQLite "sqlite://$WORK/soak.db" || result=1
if [ -n "${PG_BENCH_URL:-}" ]; then
  PGOPTIONS='-c client_min_messages=warning' psql "$PG_BENCH_URL" -qc 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
  run PostgreSQL "$PG_BENCH_URL" || result=1
fi
exit "$result"
