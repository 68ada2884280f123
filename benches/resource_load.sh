#!/usr/bin/env bash
# HTTP load bench of examples/resource_server.rs on 127.0.0.1 with wrk: the protected
# GET /hello with (a) an introspected token (cached after the first call) and (b) a JWT
# (RS256, keys from a JWKS URL), against the same API's unprotected GET /bare. Keep-alive
# and, with "Connection: close", a new connection per request. Each comparison runs
# ROUNDS times (default 3), the protected and bare cases alternating, and reports the
# median requests/s (all rounds in brackets): on a shared 2-core machine one run of each
# is too noisy to compare. Bounded: DURATION seconds per run (default 5).
#
#   benches/resource_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONN=${CONN:-32}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build --release --example resource_server --features introspection,jwt,axum >&2

# A mock authorization server: introspection (counting calls) and a static JWKS.
python3 - "$WORK" <<'PY' &
import http.server, json, sys, time, os, threading
work = sys.argv[1]
jwk = json.load(open("tests/fixtures/rsa_public.jwk.json"))
calls = 0
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, body):
        b = json.dumps(body).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        self.reply({"keys": [jwk]})
    def do_POST(self):
        global calls
        calls += 1
        open(os.path.join(work, "calls"), "w").write(str(calls))
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.reply({"active": True, "scope": "read write", "exp": int(time.time()) + 3600, "client_id": "load"})
http.server.ThreadingHTTPServer(("127.0.0.1", 39471), H).serve_forever()
PY
PIDS+=($!)
sleep 1

# An RS256 access token signed with the fixture key (openssl does the PKCS#1 v1.5 signature).
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
NOW=$(date +%s)
HEADER=$(printf '{"alg":"RS256","typ":"at+jwt","kid":"key-1"}' | b64url)
PAYLOAD=$(printf '{"iss":"https://auth.example","aud":"https://api.example","sub":"1","client_id":"load","scope":"read write","exp":%d,"iat":%d}' $((NOW+3600)) "$NOW" | b64url)
SIG=$(printf '%s.%s' "$HEADER" "$PAYLOAD" | openssl dgst -sha256 -sign tests/fixtures/rsa_private.pem | b64url)
JWT="$HEADER.$PAYLOAD.$SIG"

run_api() { # env... ; starts the example on 127.0.0.1:39472
  env "$@" BIND=127.0.0.1:39472 RUST_LOG=warn target/release/examples/resource_server >/dev/null 2>&1 &
  PIDS+=($!)
  sleep 1
}
once() { # path token extra-header -> "rps p99"
  local path=$1 token=$2 extra=${3:-}
  local args=(-t2 -c"$CONN" -d"${DURATION}s" --latency)
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "$extra" ] && args+=(-H "$extra")
  local out; out=$(wrk "${args[@]}" "http://127.0.0.1:39472$path")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  [ -z "$non2xx" ] || { echo "non-2xx answers on $path: $non2xx" >&2; exit 1; }
  printf '%s %s\n' "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '/ 99%/ {print $2}' <<<"$out")"
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
compare() { # label-a path-a token-a label-b path-b token-b extra-header
  local ra=() rb=() pa=() pb=() r
  for _ in $(seq "$ROUNDS"); do
    r=$(once "$2" "$3" "${7:-}"); ra+=("${r% *}"); pa+=("${r#* }")
    r=$(once "$5" "$6" "${7:-}"); rb+=("${r% *}"); pb+=("${r#* }")
  done
  local ma mb
  ma=$(echo "${ra[*]}" | median); mb=$(echo "${rb[*]}" | median)
  printf '| %s | %s (%s) | %s |\n' "$1" "$ma" "${ra[*]}" "${pa[*]}"
  printf '| %s | %s (%s) | %s |\n' "$4" "$mb" "${rb[*]}" "${pb[*]}"
  awk -v a="$ma" -v b="$mb" 'BEGIN {printf "| cost of the layer | %.1f %% | |\n", (a-b)*100/a}'
}

printf '| case | requests/s, median (rounds) | p99 per round |\n|---|---:|---:|\n'
run_api INTROSPECTION_URL=http://127.0.0.1:39471/o/introspect/ INTROSPECTION_AUTH_TOKEN=rs
curl -sf -H "Authorization: Bearer load-token" http://127.0.0.1:39472/hello >/dev/null
compare "bare API (GET /bare), keep-alive" /bare "" \
        "introspected token, cached (GET /hello), keep-alive" /hello load-token
compare "bare API, new connection per request" /bare "" \
        "introspected token, cached, new connection per request" /hello load-token "Connection: close"
echo "introspection calls during the run: $(cat "$WORK/calls")" >&2
kill "${PIDS[-1]}"; sleep 0.5
run_api JWKS_URL=http://127.0.0.1:39471/jwks.json JWT_ISSUER=https://auth.example JWT_AUDIENCE=https://api.example
curl -sf -H "Authorization: Bearer $JWT" http://127.0.0.1:39472/hello >/dev/null
compare "bare API, keep-alive" /bare "" "JWT RS256 (GET /hello), keep-alive" /hello "$JWT"
compare "bare API, new connection per request" /bare "" \
        "JWT RS256, new connection per request" /hello "$JWT" "Connection: close"
kill "${PIDS[-1]}"; sleep 0.5
run_api JWKS_URL=http://127.0.0.1:39471/jwks.json JWT_ISSUER=https://auth.example JWT_AUDIENCE=https://api.example TOKEN_CACHE_SECONDS=300
curl -sf -H "Authorization: Bearer $JWT" http://127.0.0.1:39472/hello >/dev/null
compare "bare API, keep-alive" /bare "" "JWT RS256, verified-token cache on, keep-alive" /hello "$JWT"
