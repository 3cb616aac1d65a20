#!/usr/bin/env bash
# tls.sh — what TLS and HTTP/2 cost on baton's proxy listener: the same
# small GET, in one run, direct to the upstream (plain HTTP, the reference)
# and through bench/batonproxy as plain HTTP/1.1, HTTP/1.1 over TLS, and
# h2 (one connection per client connection, and all streams on one
# connection). Every path is loaded with net/http's Client (bench/load
# -client go: the only one that speaks TLS), so the ratios compare alike.
# Prints a Markdown table.
#
#   bench/tls.sh                         # 3 interleaved rounds of 3 s per point
#   ROUNDS=5 DURATION=5s CONNS=16 bench/tls.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-500ms}
CONNS=${CONNS:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

work=$(mktemp -d /tmp/baton-bench-tls.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
log() { echo "tls.sh: $*" >&2; }

log "building bench programs"
(cd "$ROOT" && go build -o "$work/" ./bench/load ./bench/upstream ./bench/batonproxy)
load="$work/load"
read -r -d '' UP_PORT PLAIN_PORT TLS_PORT < <("$load" -free-ports 3 && printf '\0') || true

start() { # name, command...
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
}
wait_url() { # name url
	for _ in $(seq 1 200); do
		if curl -sk -o /dev/null "$2" -H 'Host: bench.localhost'; then return 0; fi
		sleep 0.05
	done
	log "$1 did not come up at $2; its log:"
	cat "$work/$1.log" >&2
	exit 1
}

declare -A pid
start upstream "$work/upstream" -addr "127.0.0.1:$UP_PORT"
pid[upstream]=$!
start plain "$work/batonproxy" -addr "127.0.0.1:$PLAIN_PORT" -upstream "127.0.0.1:$UP_PORT" -host bench.localhost
pid[plain]=$!
start tls "$work/batonproxy" -addr "127.0.0.1:$TLS_PORT" -upstream "127.0.0.1:$UP_PORT" -host bench.localhost -tls
pid[tls]=$!
wait_url upstream "http://127.0.0.1:$UP_PORT/"
wait_url plain "http://127.0.0.1:$PLAIN_PORT/"
wait_url tls "https://127.0.0.1:$TLS_PORT/"

# path: name|process|URL|extra load flags
paths=(
	"direct, HTTP/1.1|upstream|http://127.0.0.1:$UP_PORT/|"
	"baton, HTTP/1.1|plain|http://127.0.0.1:$PLAIN_PORT/|"
	"baton, HTTP/1.1+TLS|tls|https://127.0.0.1:$TLS_PORT/|"
	"baton, h2 ($CONNS connections)|tls|https://127.0.0.1:$TLS_PORT/|-h2"
	"baton, h2 (1 connection, $CONNS streams)|tls|https://127.0.0.1:$TLS_PORT/|-h2 -h2-shared"
)

cputicks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

log "$ROUNDS rounds x ${#paths[@]} paths, $DURATION each, $CONNS concurrent"
for round in $(seq 1 "$ROUNDS"); do
	for i in "${!paths[@]}"; do
		IFS='|' read -r _ proc url extra <<<"${paths[$i]}"
		# shellcheck disable=SC2086 # extra is a list of flags
		"$load" -client go $extra -url "$url" -host bench.localhost -c "$CONNS" -d "$WARMUP" -warmup 0 >/dev/null || true
		c0=$(cputicks "${pid[$proc]}")
		# shellcheck disable=SC2086
		"$load" -client go $extra -url "$url" -host bench.localhost -c "$CONNS" -d "$DURATION" -warmup 0 -n 100000000 \
			>"$work/r.$i.$round.json" || true
		c1=$(cputicks "${pid[$proc]}")
		n=$(jq -r '.requests // 0' "$work/r.$i.$round.json")
		awk -v c=$((c1 - c0)) -v n="$n" -v hz="$hz" 'BEGIN {if (n > 0) printf "{\"cpu_us\": %.1f}\n", c*1e6/hz/n; else print "{}"}' \
			>"$work/c.$i.$round.json"
	done
	log "round $round done"
done

median() { # i field [prefix]
	for round in $(seq 1 "$ROUNDS"); do
		jq -r ".$2 // 0" "$work/${3:-r}.$1.$round.json" 2>/dev/null || echo 0
	done | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); small GET (29 B), bench/load -client go, $CONNS concurrent, median of $ROUNDS interleaved rounds of $DURATION."
echo
echo "| path | req/s | ratio to direct | ratio to baton HTTP/1.1 | p50 ms | p99 ms | errors | CPU µs/req (proxy, or upstream for direct) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
direct=$(median 0 rps)
plain=$(median 1 rps)
for i in "${!paths[@]}"; do
	IFS='|' read -r name _ _ _ <<<"${paths[$i]}"
	rps=$(median "$i" rps)
	errs=$(for round in $(seq 1 "$ROUNDS"); do jq -r '.errors // 0' "$work/r.$i.$round.json"; done | awk '{s+=$1} END {print s+0}')
	printf '| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s |\n' "$name" "$rps" \
		"$(awk -v a="$rps" -v b="$direct" 'BEGIN {print (b > 0 ? a/b : 0)}')" \
		"$(awk -v a="$rps" -v b="$plain" 'BEGIN {print (b > 0 ? a/b : 0)}')" \
		"$(median "$i" p50_ms)" "$(median "$i" p99_ms)" "$errs" "$(median "$i" cpu_us c)"
done
