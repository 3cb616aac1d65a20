#!/usr/bin/env bash
# Builds baton and the example app, runs `baton serve`, deploys the example,
# then redeploys it under a continuous request loop and counts failures.
# baton keeps serving afterwards until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

API=${BATON_API:-127.0.0.1:7070}
PROXY=${BATON_PROXY:-127.0.0.1:8080}
# Outside the source tree: revisions are unpacked Go sources, which `go vet
# ./...` and `go test ./...` would otherwise take for packages of baton.
DATA=${BATON_DATA:-${XDG_STATE_HOME:-$HOME/.local/state}/baton-demo}
export BATON_URL="http://$API" BATON_DATA="$DATA"

echo "==> building baton (baton builds the example app itself: its [build] step)"
mkdir -p bin
go build -o bin/baton ./cmd/baton

echo "==> starting baton serve (data in $DATA, API $API, proxy $PROXY; its log: $DATA/serve.log)"
mkdir -p "$DATA"
bin/baton serve --data "$DATA" --api "$API" --proxy "$PROXY" 2>>"$DATA/serve.log" &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do
  curl -fsS "http://$API/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "baton serve exited; see $DATA/serve.log"; exit 1; }
  sleep 0.1
done

bin/baton apps create hello 2>/dev/null || echo "(app hello exists already)"

echo "==> deploying examples/hello as v1"
bin/baton deploy hello examples/hello --wait -m "demo: v1"
echo "==> GET http://hello.localhost (through the proxy)"
curl -sS -H "Host: hello.localhost" "http://$PROXY/"; echo

echo "==> redeploying as v2 while a request loop runs"
v2=$(mktemp -d)
cp -r examples/hello/. "$v2/"
echo v2 > "$v2/version.txt"
codes=$(mktemp)
( while :; do curl -s -o /dev/null -w '%{http_code}\n' -H "Host: hello.localhost" "http://$PROXY/" || echo ERR; done ) >"$codes" &
loop=$!
bin/baton deploy hello "$v2" --wait -m "demo: v2"
kill "$loop"; wait "$loop" 2>/dev/null || true
total=$(wc -l <"$codes"); failed=$(grep -vc '^200$' "$codes" || true)
echo "==> $total requests during the redeploy, $failed failed"
rm -rf "$v2" "$codes"
curl -sS -H "Host: hello.localhost" "http://$PROXY/"; echo

cat <<MSG

baton is serving; its data and admin token are in $DATA. Try:
  export BATON_URL=$BATON_URL BATON_DATA=$DATA   # so the CLI finds the server and its token
  curl -H 'Host: hello.localhost' http://$PROXY/
  bin/baton deployments list hello
  bin/baton deploy hello examples/hello --wait
Press Ctrl-C to stop.
MSG
wait "$pid"
