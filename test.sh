#!/usr/bin/env bash
# Runs baton's whole test suite: every package under the race detector
# (the end-to-end tests' baton where it drives many operations at once),
# with a throwaway PostgreSQL cluster and headless Chromium, while vet,
# gofmt and staticcheck run beside it at a lower priority; fuzzes the
# proxy's front door for a bounded number of inputs; and fails if any
# process the suite started is still running.
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

if [ -x scripts/chromium.sh ]; then
  echo "==> chromium (for the dashboard's browser tests)"
  scripts/chromium.sh
fi

echo "==> PostgreSQL (for the PostgreSQL store and multi-controller tests)"
eval "$(scripts/postgres.sh start)"
trap 'scripts/postgres.sh stop' EXIT

# -race also turns on the compiler's unsafe.Pointer checks (checkptr) in
# every package. modernc.org's SQLite is C translated to Go, pointer
# arithmetic throughout: the checks there were a third of the CPU time of
# the packages that use the SQLite store (coordinator: 107 -> 74
# CPU-seconds), and check C's pointer rules, not baton's. The race
# detector still instruments it. (Leaving modernc out of -race, 107 -> 48,
# was tried and is unsafe: the race detector then reported races in
# sync.Map's users in two runs of two, never seen before. Most likely
# modernc's uninstrumented copies of generic functions, atomic.Pointer's
# among them, were the ones the linker kept of the duplicates.) The e2e
# tests' race-built baton inherits this through GOFLAGS; so do go vet and
# staticcheck below, set before they start: a flag changes the build
# cache's key, and without it they compiled modernc's SQLite once more
# (~28 CPU-seconds on an empty cache).
# -ldflags=-w: the linker writes no DWARF debugging information into the
# ~45 test binaries and batons the suite links (a fifth less link time;
# stack traces and the race detector's reports do not use it).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-gcflags=modernc.org/...=-d=checkptr=0 -ldflags=-w"

# go vet, the gofmt check and staticcheck run in the background at a lower
# priority while the tests run (the CPU the tests leave idle, waiting on
# child processes and timers, runs them), and report after the tests; they
# fail the run as before. `go test -vet=off` below: go vet ./... runs every
# check go test's own vet step would.
lint_log=$(mktemp)
(
  lint_rc=0
  echo "==> go vet"
  nice -n 10 go vet ./... || lint_rc=1
  unformatted=$(gofmt -l .)
  if [ -n "$unformatted" ]; then
    echo "gofmt: these files need formatting:"; echo "$unformatted"; lint_rc=1
  fi
  echo "==> staticcheck"
  nice -n 10 go tool staticcheck ./... || lint_rc=1
  exit $lint_rc
) >"$lint_log" 2>&1 &
lint_pid=$!

# Differential fuzzing of the proxy's HTTP/1.1 front door against net/http
# (its seeds run in the proxy's tests as well; new crashers land in
# proxy/testdata/fuzz/FuzzFrontDoor and become regression seeds). It runs
# from the start at the lint's lower priority: on the CPU the tests leave
# idle, then on what they free as they end (after them it ran alone on
# about one core for 20-40 s, its instrumented build included). A count of
# inputs, not a time: a time would fuzz less the busier the machine is.
fuzz_log=$(mktemp)
fuzz_pid=
if [ $# -eq 0 ]; then
  (
    echo "==> fuzzing the proxy's front door for ${FUZZTIME:=50000x}"
    nice -n 10 go test -run '^$' -fuzz '^FuzzFrontDoor$' -fuzztime "$FUZZTIME" ./proxy/
  ) >"$fuzz_log" 2>&1 &
  fuzz_pid=$!
fi

# Two go test runs at once: every package but e2e under the race detector,
# and the end-to-end tests, whose baton child processes are what they
# test: those that drive many operations at once run a race-built baton
# (-e2e.race-baton; e2e/harness_test.go), and the test binary itself,
# which only drives them (HTTP clients, load generators, the browser), is
# a plain build (the race detector cost it ~70 CPU-seconds a run and
# checked only the tests' own code). Started together, the short packages
# run beside the end-to-end tests instead of after them.
echo "==> go test (go vet, gofmt, staticcheck and the fuzzing beside it)"
rc=0
e2e_rc_file=$(mktemp)
(
  e2e_rc=0
  go test -count=1 -timeout 25m -vet=off "$@" ./e2e/ -e2e.race-baton || e2e_rc=$?
  echo "$e2e_rc" >"$e2e_rc_file"
) &
e2e_pid=$!
# go test runs one package per CPU (its default), in the order named: the
# longest first (the coordinator, then those over ~20 s in a whole run), so
# that no long package starts last and runs alone at the end. More at once
# (-p 3 and 4) did not shorten the run: the suite is CPU-bound.
longest_first="./coordinator/ ./ociimage/ ./api/ ./proxy/ ./postgres/ ./gitdeploy/ ./artifact/ ./backup/ ./supervisor/"
# shellcheck disable=SC2046,SC2086
go test -race -count=1 -timeout 25m -vet=off "$@" $longest_first $(go list ./... | grep -v '/e2e$') || rc=$?

wait "$e2e_pid"
[ "$(cat "$e2e_rc_file")" = 0 ] || rc=1
rm -f "$e2e_rc_file"
if [ -n "$fuzz_pid" ]; then
  wait "$fuzz_pid" || rc=1
  cat "$fuzz_log"
fi
rm -f "$fuzz_log"
wait "$lint_pid" || rc=$?
cat "$lint_log"
rm -f "$lint_log"

echo "==> processes left by the suite"
scripts/orphans.sh || rc=$?
exit $rc
