#!/usr/bin/env bash
# proxies.sh — the same HTTP/1.1 load, in one run, against an upstream
# directly and through baton's proxy, HAProxy, nginx and Caddy, all on
# loopback. Prints a Markdown table and writes it to bench/results.md, the
# same figures as JSON to bench/results.json, and draws them with
# bench/chart into docs/proxy-bench.svg.
#
#   bench/proxies.sh                 # defaults: 3 rounds of 3 s per point
#   ROUNDS=5 DURATION=5s bench/proxies.sh
#   ONLY='\|16\|true' LOADER=go bench/proxies.sh   # some workloads, net/http client
#   OUT=/tmp/run.md CHART= bench/proxies.sh         # /tmp/run.md and /tmp/run.json, no chart
#   PATHS='baton baton-nometrics' ONLY='\|16\|true' ROUNDS=3 DURATION=2s OUT=/tmp/m.md CHART= bench/proxies.sh
#                                    # only the metrics cost: nothing else installed or started
#
# LOADER picks the load generator: raw (bench/load's minimal HTTP/1.1 on
# sockets, the default), go (bench/load with net/http's Client), wrk (the
# C tool, from apt-get) or hey (a common Go tool, go install'ed). A heavier
# client takes a larger share of the CPU and raises every proxy's ratio.
#
# baton runs twice, as bench/batonproxy: "baton" with request metrics on
# (as baton serve runs by default) and "baton-nometrics" with them off
# (--request-metrics=false); after the table the script prints what the
# metrics cost: req/s with them on over req/s with them off, per workload,
# and the CPU per request of each (the issue's bound: on >= 0.97 x off).
#
# Besides HAProxy, nginx and Caddy, two references run: fasthttp, the
# minimal Go proxy on valyala/fasthttp of ../shared/BENCHMARKS.md, and
# floor, a TCP relay in an epoll loop with no HTTP in it: no proxy can do
# less per request, so its ratio bounds every proxy's on the machine.
#
# Workloads: a small JSON GET with keep-alive at 1, 16 and 64 connections,
# without keep-alive at 16, a 1 KiB response at 16, and a 64 KiB response
# at 16 and 64. Rounds are interleaved (every path once per workload, then
# again), and each figure is the median over the rounds: on a shared
# machine, load from elsewhere then hits every path alike. Compare ratios
# within one run.
#
# It installs what is missing: haproxy and nginx-light with apt-get, Caddy
# with `go install` into a temporary GOBIN (CADDY=path skips that).
# Everything it starts listens on 127.0.0.1 and is stopped when it exits.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-500ms}
LOADER=${LOADER:-raw} # raw, go, wrk or hey (see above)
HEY_VERSION=${HEY_VERSION:-v0.1.5}
CADDY_VERSION=${CADDY_VERSION:-v2.11.9}
# PATHS picks what runs besides direct (always run: the ratios' base).
PATHS=${PATHS:-baton baton-nometrics haproxy nginx caddy fasthttp floor}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$HERE/results.md}
JSON=${JSON:-${OUT%.md}.json}             # the table as JSON, next to OUT
CHART=${CHART-$ROOT/docs/proxy-bench.svg} # CHART= (empty): no chart

work=$(mktemp -d /tmp/baton-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

log() { echo "proxies.sh: $*" >&2; }
want() { [[ " $PATHS " == *" $1 "* ]]; }

# --- tools -------------------------------------------------------------
if { want haproxy && ! command -v haproxy >/dev/null; } || { want nginx && ! command -v nginx >/dev/null; }; then
	log "installing haproxy and nginx-light"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx-light >&2
fi
if [ "$LOADER" = wrk ] && ! command -v wrk >/dev/null; then
	log "installing wrk"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2
fi
if [ "$LOADER" = hey ]; then
	log "building hey $HEY_VERSION"
	mkdir -p "$work/gobin"
	(cd "$work" && GOBIN="$work/gobin" go install "github.com/rakyll/hey@$HEY_VERSION") >&2
fi
caddy=${CADDY:-} # a prebuilt caddy of $CADDY_VERSION saves the build
if [ -z "$caddy" ] && want caddy; then
	log "building caddy $CADDY_VERSION"
	mkdir -p "$work/gobin"
	(cd "$work" && GOBIN="$work/gobin" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION") >&2
	caddy="$work/gobin/caddy"
fi
log "building bench programs"
(cd "$ROOT" && go build -o "$work/" ./bench/load ./bench/upstream ./bench/batonproxy ./bench/floorproxy ./bench/chart)
if want fasthttp; then
	(cd "$ROOT/bench/fasthttpproxy" && go build -o "$work/" .) # a module of its own
fi
load="$work/load"

# --- processes ---------------------------------------------------------
read -r -d '' UP_PORT BATON_PORT HAPROXY_PORT NGINX_PORT CADDY_PORT FASTHTTP_PORT FLOOR_PORT NOMETRICS_PORT < <("$load" -free-ports 8 && printf '\0') || true
if [ -z "$NOMETRICS_PORT" ]; then
	log "could not get 8 free loopback ports"
	exit 1
fi

start() { # name, command...: runs it in the background, remembered for cleanup
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=("$!")
}

wait_port() { # name, port
	for _ in $(seq 1 200); do
		if curl -s -o /dev/null "http://127.0.0.1:$2/" -H 'Host: bench.localhost'; then
			return 0
		fi
		sleep 0.05
	done
	log "$1 did not come up on port $2; its log:"
	cat "$work/$1.log" >&2
	exit 1
}

declare -A pid
start upstream "$work/upstream" -addr "127.0.0.1:$UP_PORT"
pid[upstream]=$!
wait_port upstream "$UP_PORT"

if want baton; then
	start baton "$work/batonproxy" -addr "127.0.0.1:$BATON_PORT" -upstream "127.0.0.1:$UP_PORT" -host bench.localhost
	pid[baton]=$!
fi
if want baton-nometrics; then
	start baton-nometrics "$work/batonproxy" -addr "127.0.0.1:$NOMETRICS_PORT" -upstream "127.0.0.1:$UP_PORT" -host bench.localhost -request-metrics=false
	pid[baton-nometrics]=$!
fi

cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # keep upstream connections alive and share them
    http-reuse always
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend be
backend be
    server up 127.0.0.1:$UP_PORT maxconn 1000
EOF
if want haproxy; then
	start haproxy haproxy -db -f "$work/haproxy.cfg"
	pid[haproxy]=$!
fi

mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    upstream up {
        server 127.0.0.1:$UP_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
EOF
if want nginx; then
	start nginx nginx -p "$work/nginx" -c "$work/nginx.conf" -g 'daemon off;'
	pid[nginx]=$!
fi

cat >"$work/Caddyfile" <<EOF
{
    admin off
    auto_https off
    persist_config off
}
http://:$CADDY_PORT {
    bind 127.0.0.1
    reverse_proxy 127.0.0.1:$UP_PORT
}
EOF
if want caddy; then
	start caddy env HOME="$work" XDG_DATA_HOME="$work" XDG_CONFIG_HOME="$work" "$caddy" run --config "$work/Caddyfile" --adapter caddyfile
	pid[caddy]=$!
fi
if want fasthttp; then
	start fasthttp "$work/fasthttpproxy" -addr "127.0.0.1:$FASTHTTP_PORT" -upstream "127.0.0.1:$UP_PORT"
	pid[fasthttp]=$!
fi
if want floor; then
	start floor "$work/floorproxy" -addr "127.0.0.1:$FLOOR_PORT" -upstream "127.0.0.1:$UP_PORT"
	pid[floor]=$!
fi

# --- load ----------------------------------------------------------------
paths=(direct)
declare -A port=([direct]=$UP_PORT [baton]=$BATON_PORT [baton-nometrics]=$NOMETRICS_PORT [haproxy]=$HAPROXY_PORT [nginx]=$NGINX_PORT
	[caddy]=$CADDY_PORT [fasthttp]=$FASTHTTP_PORT [floor]=$FLOOR_PORT)
for p in baton baton-nometrics haproxy nginx caddy fasthttp floor; do
	if want "$p"; then
		wait_port "$p" "${port[$p]}"
		paths+=("$p")
	fi
done

# workload: name|path|conns|keep-alive
all_workloads=(
	"small GET, keep-alive|/|1|true"
	"small GET, keep-alive|/|16|true"
	"small GET, keep-alive|/|64|true"
	"small GET, new connection per request|/|16|false"
	"1 KiB GET, keep-alive|/1k|16|true"
	"64 KiB GET, keep-alive|/64k|16|true"
	"64 KiB GET, keep-alive|/64k|64|true"
)
# ONLY=REGEX keeps the workloads whose "name|path|conns|keep-alive" matches.
workloads=()
for w in "${all_workloads[@]}"; do
	if [[ -z ${ONLY:-} || $w =~ ${ONLY:-} ]]; then
		workloads+=("$w")
	fi
done

# CPU time (utime+stime, clock ticks) of a process and its children's
# threads: nginx's workers are children of its master.
cputicks() {
	local p
	for p in "$1" $(pgrep -P "$1" || true); do
		awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0
	done | awk '{s+=$1} END {print s+0}'
}
hz=$(getconf CLK_TCK)

# loadrun URL CONNS KEEPALIVE DURATION: one closed-loop run of $LOADER,
# printed as bench/load prints it: one JSON object with requests, errors,
# seconds, rps, p50_ms, p99_ms and p999_ms.
cat >"$work/wrk.lua" <<'EOF'
done = function(summary, latency, requests)
	local e = summary.errors
	io.write(string.format('{"requests": %d, "errors": %d, "seconds": %f, "rps": %f, "p50_ms": %f, "p99_ms": %f, "p999_ms": %f}\n',
		summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration / 1e6,
		summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
		latency:percentile(99.9) / 1e3))
end
EOF
loadrun() {
	local url=$1 conns=$2 keep=$3 d=$4
	case $LOADER in
	raw | go)
		"$load" -client "$LOADER" -url "$url" -host bench.localhost -c "$conns" -k="$keep" -d "$d" -warmup 0 -n 100000000
		;;
	wrk)
		local close=()
		[ "$keep" = true ] || close=(-H 'Connection: close')
		wrk -t "$((conns < 2 ? conns : 2))" -c "$conns" -d "$d" -H 'Host: bench.localhost' "${close[@]}" -s "$work/wrk.lua" "$url" | grep '^{'
		;;
	hey)
		local nokeep=()
		[ "$keep" = true ] || nokeep=(-disable-keepalive)
		# One CSV row per request: response time (s) 1st, status code 7th,
		# start offset (s) 8th; the run lasted until the last one ended.
		# hey writes no row for a request that failed without an answer,
		# so with hey the errors column counts non-200 answers only.
		"$work/gobin/hey" -z "$d" -c "$conns" -host bench.localhost "${nokeep[@]}" -o csv "$url" | awk -F, '
			NR > 1 { n++; if ($7 != 200) e++; else print $1 * 1000; if ($8 + $1 > s) s = $8 + $1 }
			END { printf "# %d %d %f\n", n, e, s }' | sort -g | awk '
			/^#/ { n = $2; e = $3; s = $4; next }
			{ v[++k] = $1 }
			function pct(p) { return k ? v[int((k - 1) * p / 100) + 1] : 0 }
			END { printf "{\"requests\": %d, \"errors\": %d, \"seconds\": %f, \"rps\": %f, \"p50_ms\": %f, \"p99_ms\": %f, \"p999_ms\": %f}\n",
				n, e, s, (s > 0 ? n / s : 0), pct(50), pct(99), pct(99.9) }'
		;;
	*)
		log "LOADER must be raw, go, wrk or hey, not $LOADER"
		exit 2
		;;
	esac
}

log "$ROUNDS rounds x ${#workloads[@]} workloads x ${#paths[@]} paths, $DURATION each"
for round in $(seq 1 "$ROUNDS"); do
	for wi in "${!workloads[@]}"; do
		IFS='|' read -r _ urlpath conns keep <<<"${workloads[$wi]}"
		for path in "${paths[@]}"; do
			url="http://127.0.0.1:${port[$path]}$urlpath"
			loadrun "$url" "$conns" "$keep" "$WARMUP" >/dev/null || true
			proxy=${pid[$path]:-${pid[upstream]}}
			p0=$(cputicks "$proxy")
			u0=$(cputicks "${pid[upstream]}")
			r="$work/r.$wi.$path.$round.json"
			loadrun "$url" "$conns" "$keep" "$DURATION" >"$r" || true
			p1=$(cputicks "$proxy")
			u1=$(cputicks "${pid[upstream]}")
			if ! jq -e .requests "$r" >/dev/null 2>&1; then
				# Counted as a run with an error, not left out of the medians unseen.
				log "$path, workload $wi, round $round: $LOADER printed no result"
				echo '{"requests": 0, "errors": 1}' >"$r"
			fi
			# CPU microseconds per request, of the proxy (of the upstream
			# for direct) and of the upstream: unlike req/s, this barely
			# moves with load from elsewhere on the machine.
			n=$(jq -r '.requests // 0' "$work/r.$wi.$path.$round.json" 2>/dev/null || echo 0)
			awk -v p=$((p1 - p0)) -v u=$((u1 - u0)) -v n="$n" -v hz="$hz" \
				'BEGIN {if (n > 0) printf "{\"proxy_cpu_us\": %.1f, \"upstream_cpu_us\": %.1f}\n", p*1e6/hz/n, u*1e6/hz/n; else print "{}"}' \
				>"$work/c.$wi.$path.$round.json"
		done
	done
	log "round $round done"
done

# median of a JSON field over the rounds of one workload and path
median() { # wi path field [file prefix]
	for round in $(seq 1 "$ROUNDS"); do
		jq -r ".$3 // 0" "$work/${4:-r}.$1.$2.$round.json" 2>/dev/null || echo 0
	done | sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
total() { # wi path field: sum over rounds
	for round in $(seq 1 "$ROUNDS"); do
		jq -r ".$3 // 0" "$work/r.$1.$2.$round.json" 2>/dev/null || echo 0
	done | awk '{s+=$1} END {print s+0}'
}

when=$(date -u '+%Y-%m-%d %H:%M UTC')
machine="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
# sed, not head: head exits early, haproxy gets SIGPIPE, and pipefail ends the script.
haproxy_version=- nginx_version=- fasthttp_version=-
if want haproxy; then haproxy_version=$(haproxy -v | sed -n "1s/^[^ ]* [^ ]* \([^ ]*\).*/\1/p"); fi
if want nginx; then nginx_version=$(nginx -v 2>&1 | cut -d/ -f2); fi
if want fasthttp; then fasthttp_version=$(cd "$ROOT/bench/fasthttpproxy" && go list -m -f '{{.Version}}' github.com/valyala/fasthttp); fi
case $LOADER in
raw | go) loader_desc="bench/load -client $LOADER" ;;
wrk) loader_desc="$( (wrk -v 2>&1 || true) | sed -n '1s/^\(wrk [^ ]*\).*/\1/p'), 2 threads" ;;
hey) loader_desc="hey $HEY_VERSION (net/http client)" ;;
esac
: >"$work/points.jsonl"
{
	echo "# Proxy benchmark"
	echo
	echo "$when, $machine."
	echo "Upstream: bench/upstream (Go net/http, 29-byte JSON, 1 KiB or 64 KiB). Load: $loader_desc (closed loop), $ROUNDS interleaved rounds of $DURATION per point, median shown."
	echo "baton: bench/batonproxy (proxy.New, one route, Serve data plane). HAProxy version $haproxy_version, 2 threads, http-reuse always; nginx $nginx_version, 2 workers, upstream keepalive; Caddy $CADDY_VERSION, reverse_proxy. References: fasthttp, bench/fasthttpproxy (valyala/fasthttp $fasthttp_version, HostClient); floor, bench/floorproxy (a TCP relay in epoll loops, no HTTP: the least any proxy does). All on the same 2 cores as the load and the upstream."
	echo
	echo "CPU µs/req: CPU time per request of the proxy's processes and of the upstream, measured from /proc; it is the figure least moved by other load on the machine."
	echo
	echo "| workload | conns | path | req/s | ratio to direct | p50 ms | p99 ms | p99.9 ms | errors | proxy CPU µs/req | upstream CPU µs/req |"
	echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for wi in "${!workloads[@]}"; do
		IFS='|' read -r name _ conns _ <<<"${workloads[$wi]}"
		direct=$(median "$wi" direct rps)
		for path in "${paths[@]}"; do
			rps=$(median "$wi" "$path" rps)
			ratio=$(awk -v a="$rps" -v b="$direct" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "-"}')
			pcpu="$(median "$wi" "$path" proxy_cpu_us c)"
			[ "$path" = direct ] && pcpu="-"
			# The same figures, as printed, in the table and in the JSON.
			row=("$name" "$conns" "$path" "$(printf '%.0f' "$rps")" "$ratio"
				"$(printf '%.2f' "$(median "$wi" "$path" p50_ms)")" "$(printf '%.2f' "$(median "$wi" "$path" p99_ms)")"
				"$(printf '%.2f' "$(median "$wi" "$path" p999_ms)")" "$(total "$wi" "$path" errors)" "$pcpu"
				"$(median "$wi" "$path" upstream_cpu_us c)")
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${row[@]}"
			jq -cn --arg loader "$LOADER" --arg workload "${row[0]}" --argjson conns "${row[1]}" --arg path "${row[2]}" \
				--argjson rps "${row[3]}" --arg ratio "${row[4]}" --argjson p50 "${row[5]}" --argjson p99 "${row[6]}" \
				--argjson p999 "${row[7]}" --argjson errors "${row[8]}" --arg pcpu "${row[9]}" --argjson ucpu "${row[10]}" \
				'{loader: $loader, workload: $workload, conns: $conns, path: $path, rps: $rps,
				  ratio: ($ratio | tonumber? // null), p50_ms: $p50, p99_ms: $p99, p999_ms: $p999, errors: $errors,
				  proxy_cpu_us: ($pcpu | tonumber? // null), upstream_cpu_us: $ucpu}' >>"$work/points.jsonl"
		done
	done
	echo
	if want baton && want baton-nometrics; then
	echo "## What baton's request metrics cost"
	echo
	echo "baton (request metrics on, the default) against baton-nometrics (\`--request-metrics=false\`), same run: req/s on ÷ off (≥ 0.97 is the bound), and the proxy's CPU per request."
	echo
	echo "| workload | conns | req/s on | req/s off | on ÷ off | CPU µs/req on | CPU µs/req off |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for wi in "${!workloads[@]}"; do
		IFS='|' read -r name _ conns _ <<<"${workloads[$wi]}"
		on=$(median "$wi" baton rps)
		off=$(median "$wi" baton-nometrics rps)
		printf '| %s | %s | %.0f | %.0f | %s | %s | %s |\n' "$name" "$conns" "$on" "$off" \
			"$(awk -v a="$on" -v b="$off" 'BEGIN {if (b > 0) printf "%.3f", a/b; else print "-"}')" \
			"$(median "$wi" baton proxy_cpu_us c)" "$(median "$wi" baton-nometrics proxy_cpu_us c)"
	done
	fi
	echo
	subset=""
	[ -n "${ONLY:-}" ] && subset+="ONLY='$ONLY' "
	[ "$PATHS" != "baton baton-nometrics haproxy nginx caddy fasthttp floor" ] && subset+="PATHS='$PATHS' "
	echo "Reproduce: \`${subset}LOADER=$LOADER ROUNDS=$ROUNDS DURATION=$DURATION bench/proxies.sh\`"
} | tee "$OUT"

# bench/chart's Results: the run, then one object per row of the table.
jq -s --arg date "$when" --arg machine "$machine" --arg loader "$LOADER" --argjson rounds "$ROUNDS" \
	--arg duration "$DURATION" --arg caddy "$CADDY_VERSION" --arg haproxy "$haproxy_version" --arg nginx "$nginx_version" \
	--arg fasthttp "$fasthttp_version" \
	'{date: $date, machine: $machine, loader: $loader, rounds: $rounds, duration: $duration,
	  versions: {caddy: $caddy, haproxy: $haproxy, nginx: $nginx, fasthttp: $fasthttp}, points: .}' "$work/points.jsonl" >"$JSON"
log "wrote $OUT and $JSON"
if [ -n "$CHART" ]; then
	"$work/chart" -in "$JSON" -out "$CHART"
	log "wrote $CHART"
fi
