#!/usr/bin/env bash
# Bench of `oauth-toolkit cleartokens` on N expired access tokens, each with a live refresh
# token (2 x N rows deleted), on SQLite and PostgreSQL: wall time, rows per second and peak
# memory (max RSS from /usr/bin/time -v), at several sizes to show memory does not grow
# with the table. DOT's settings otherwise: batch 10000, interval 0.
#
#   benches/cleartokens.sh                     # SQLite and, if PG_BENCH_URL is set, PostgreSQL
#   SIZES="100000 1000000" PG_BENCH_URL=postgres://toolkit:toolkit@127.0.0.1/toolkit_bench benches/cleartokens.sh
#
# PG_BENCH_URL's database is emptied (schema public dropped and recreated) for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100000 1000000"}
cargo build --release --bin oauth-toolkit --example seed_expired_tokens >&2
BIN=target/release/oauth-toolkit
SEED=target/release/examples/seed_expired_tokens
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OAUTH2_PROVIDER_REFRESH_TOKEN_EXPIRE_SECONDS=86400
export RUST_LOG=warn

printf '| database | access tokens | rows deleted | clear_expired (s) | process wall (s) | rows/s (process wall) | peak RSS (MiB) | seeding (s) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
run() {
  local label=$1 url=$2 n=$3
  local seed_start seed_end
  seed_start=$(date +%s.%N)
  "$SEED" "$url" "$n" >/dev/null
  seed_end=$(date +%s.%N)
  /usr/bin/time -v "$BIN" --database-url "$url" cleartokens --json >"$WORK/out.json" 2>"$WORK/time.txt"
  local deleted secs rss wall
  deleted=$(python3 -c "import json;print(json.load(open('$WORK/out.json'))['total'])")
  secs=$(python3 -c "import json;print(json.load(open('$WORK/out.json'))['seconds'])")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$WORK/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$WORK/time.txt")
  printf '| %s | %d | %d | %.2f | %.2f | %.0f | %s | %.1f |\n' "$label" "$n" "$deleted" "$secs" "$wall" \
    "$(python3 -c "print($deleted/max($wall,1e-9))")" "$rss" "$(python3 -c "print($seed_end-$seed_start)")"
}
for n in $SIZES; do
  rm -f "$WORK"/bench.db*
  run SQLite "sqlite://$WORK/bench.db" "$n"
done
if [ -n "${PG_BENCH_URL:-}" ]; then
  for n in $SIZES; do
    psql -q "$PG_BENCH_URL" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null
    run PostgreSQL "$PG_BENCH_URL" "$n"
  done
fi
