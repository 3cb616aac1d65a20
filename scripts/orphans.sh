#!/usr/bin/env bash
# Lists the processes baton's test suite left running and fails if there
# are any. Run it after `go test` (test.sh does, last).
#
# A process is the suite's when its command line, working directory or
# executable is under one of the suite's temp dirs, in $TMPDIR (default
# /tmp) and in /tmp:
#   Test*/ Fuzz*/ Benchmark*/   t.TempDir() of every test: baton data
#                               directories, app folders, gates, git work trees
#   baton-e2e-bin-*/            the baton and example binaries e2e builds
#   baton-hooktest-*/           gitdeploy's hook tests
#   go-build*/                  test binaries (some re-run themselves as helpers)
# and every process in another mount namespace (the containers baton runs
# with runc, podman's).
# It is left over when no ancestor of it is still a running test (a *.test
# binary or the go command): another test run on the same machine is not
# this suite's leftover, while an orphan has been re-parented to init.
#
#   scripts/orphans.sh          exit 0: none; exit 1: lists them, one a line
set -euo pipefail

roots=()
for base in "${TMPDIR:-/tmp}" /tmp; do
  base=${base%/}
  for pat in 'Test*' 'Fuzz*' 'Benchmark*' 'baton-e2e-bin-*' 'baton-hooktest-*' 'go-build*'; do
    roots+=("$base/$pat")
  done
done

# under PATH: whether PATH is one of the roots or below one.
under() {
  local p=$1 r
  [ -n "$p" ] || return 1
  for r in "${roots[@]}"; do
    # shellcheck disable=SC2053 # $r is a glob on purpose
    if [[ $p == $r || $p == $r/* ]]; then return 0; fi
  done
  return 1
}

# mentions_root TEXT: whether a command line names a path under a root.
mentions_root() {
  local w
  for w in $1; do
    w=${w#*=} # --data=/tmp/Test…
    if under "$w"; then return 0; fi
  done
  return 1
}

ppid_of() { awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$1/stat" 2>/dev/null; }
state_of() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null; }

# in_live_test PID: whether an ancestor of PID is a running test binary or
# the go command.
in_live_test() {
  local p exe
  p=$(ppid_of "$1") || return 1
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    exe=$(readlink "/proc/$p/exe" 2>/dev/null || true)
    exe=${exe% (deleted)}
    case ${exe##*/} in
      *.test | go) return 0 ;;
    esac
    p=$(ppid_of "$p") || return 1
  done
  return 1
}

self=$$
found=0
# A container (runc, podman) sees its own paths, not the temp dirs, so it
# is known by its mount namespace: any process outside this script's
# with no running test above it was left by the suite.
my_mnt=$(readlink /proc/self/ns/mnt)
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" = "$self" ] && continue
  state=$(state_of "$pid") || continue
  case $state in Z | X | '') continue ;; esac
  cmd=$(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null || true)
  [ -n "$cmd" ] || continue # kernel threads
  cwd=$(readlink "$dir/cwd" 2>/dev/null || true)
  cwd=${cwd% (deleted)}
  exe=$(readlink "$dir/exe" 2>/dev/null || true)
  exe=${exe% (deleted)}
  mnt=$(readlink "$dir/ns/mnt" 2>/dev/null || true)
  if under "$cwd" || under "$exe" || mentions_root "$cmd" || { [ -n "$mnt" ] && [ "$mnt" != "$my_mnt" ]; }; then
    in_live_test "$pid" && continue
    # Our own pipeline (this script's subshells) never matches: it runs
    # in the repository, not in a temp dir.
    echo "orphans.sh: left running: pid $pid (ppid $(ppid_of "$pid"), cwd $cwd): $cmd" >&2
    found=$((found + 1))
  fi
done

if [ "$found" -gt 0 ]; then
  echo "orphans.sh: the test suite left $found process(es) running (listed above); a test did not end what it started" >&2
  exit 1
fi
echo "orphans.sh: no process left by the test suite" >&2
