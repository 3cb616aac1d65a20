#!/usr/bin/env bash
# Runs baton's whole test suite: vet, gofmt, staticcheck, then every
# package under the race detector, with a throwaway PostgreSQL cluster and
# headless Chromium; then fuzzes the proxy's front door for a bounded time
# and fails if any process the suite started is still running.
# Installs what the tests need (git, curl, promtool, runc, podman, skopeo,
# HAProxy, PostgreSQL, Chromium) when missing.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v curl >/dev/null || need_apt+=(curl)
# promtool checks the /metrics exposition (metrics/requests_test.go).
command -v promtool >/dev/null || need_apt+=(prometheus)
# Container images run under runc; podman and skopeo push to baton's
# registry in the image tests.
command -v runc >/dev/null || need_apt+=(runc)
command -v podman >/dev/null || need_apt+=(podman)
command -v skopeo >/dev/null || need_apt+=(skopeo)
# Several hosts behind a load balancer (e2e/haproxy_test.go).
command -v haproxy >/dev/null || need_apt+=(haproxy)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

echo "==> go vet"
go vet ./...
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt: these files need formatting:"; echo "$unformatted"; exit 1
fi
echo "==> staticcheck"; go tool staticcheck ./...

if [ -x scripts/chromium.sh ]; then
  echo "==> chromium (for the dashboard's browser tests)"
  scripts/chromium.sh
fi

echo "==> PostgreSQL (for the PostgreSQL store and multi-controller tests)"
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop' EXIT

echo "==> go test -race"
rc=0
go test -race -count=1 -timeout 25m "$@" ./... || rc=$?

# Differential fuzzing of the proxy's HTTP/1.1 front door against net/http
# (its seeds ran above already; new crashers land in
# proxy/testdata/fuzz/FuzzFrontDoor and become regression seeds).
if [ $# -eq 0 ]; then
  echo "==> fuzzing the proxy's front door for ${FUZZTIME:=20s}"
  go test -run '^$' -fuzz '^FuzzFrontDoor$' -fuzztime "$FUZZTIME" ./proxy/ || rc=$?
fi

echo "==> processes left by the suite"
scripts/orphans.sh || rc=$?
exit $rc
