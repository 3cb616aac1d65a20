#!/usr/bin/env bash
# tls.sh — what TLS and HTTP/2 cost on baton's proxy listener, beside
# HAProxy and nginx: the same small GET, in one run, direct to the upstream
# (plain HTTP, the reference) and through each proxy as plain HTTP/1.1,
# HTTP/1.1 over TLS and h2 (one connection per client connection, and all
# streams on one connection). All proxies serve the same certificate (a
# self-signed P-256 one made for the run). Prints a Markdown table.
#
#   bench/tls.sh                         # 3 interleaved rounds of 3 s per point
#   LOADER=h2load bench/tls.sh           # nghttp2's h2load instead of Go's client
#   ROUNDS=5 DURATION=5s CONNS=16 PATHS='baton nginx' bench/tls.sh
#
# LOADER picks the load client, the same for every row: go (bench/load
# -client go: net/http's Client, the default) or h2load (nghttp2's, in C:
# it leaves the proxies more of the two cores, so their own cost weighs
# more in every ratio). It installs what is missing with apt-get: haproxy
# and nginx-light, and nghttp2-client for h2load.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-500ms}
CONNS=${CONNS:-16}
LOADER=${LOADER:-go}
PATHS=${PATHS:-baton haproxy nginx}
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
want() { [[ " $PATHS " == *" $1 "* ]]; }

# --- tools -------------------------------------------------------------
missing=()
if want haproxy && ! command -v haproxy >/dev/null; then missing+=(haproxy); fi
if want nginx && ! command -v nginx >/dev/null; then missing+=(nginx-light); fi
if [ "$LOADER" = h2load ] && ! command -v h2load >/dev/null; then missing+=(nghttp2-client); fi
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
case $LOADER in
go | h2load) ;;
*)
	log "LOADER must be go or h2load, not $LOADER"
	exit 2
	;;
esac

log "building bench programs"
(cd "$ROOT" && go build -o "$work/" ./bench/load ./bench/upstream ./bench/batonproxy)
load="$work/load"
read -r -d '' UP_PORT BATON_PLAIN BATON_TLS HAPROXY_PLAIN HAPROXY_TLS NGINX_PLAIN NGINX_TLS < <("$load" -free-ports 7 && printf '\0') || true

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=bench.localhost \
	-addext "subjectAltName=DNS:bench.localhost,IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/haproxy.pem"

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
wait_url upstream "http://127.0.0.1:$UP_PORT/"

# path: name|process|URL|protocol (h1, h2, h2-shared)
paths=("direct, HTTP/1.1|upstream|http://127.0.0.1:$UP_PORT/|h1")
if want baton; then
	start baton "$work/batonproxy" -addr "127.0.0.1:$BATON_PLAIN" -upstream "127.0.0.1:$UP_PORT" -host bench.localhost
	pid[baton]=$!
	start baton-tls "$work/batonproxy" -addr "127.0.0.1:$BATON_TLS" -upstream "127.0.0.1:$UP_PORT" -host bench.localhost \
		-tls-cert "$work/cert.pem" -tls-key "$work/key.pem"
	pid[baton-tls]=$!
	wait_url baton "http://127.0.0.1:$BATON_PLAIN/"
	wait_url baton-tls "https://127.0.0.1:$BATON_TLS/"
fi
if want haproxy; then
	cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend plain
    bind 127.0.0.1:$HAPROXY_PLAIN
    default_backend be
frontend tls
    bind 127.0.0.1:$HAPROXY_TLS ssl crt $work/haproxy.pem alpn h2,http/1.1
    default_backend be
backend be
    server up 127.0.0.1:$UP_PORT maxconn 1000
EOF
	start haproxy haproxy -db -f "$work/haproxy.cfg"
	pid[haproxy]=$!
	wait_url haproxy "https://127.0.0.1:$HAPROXY_TLS/"
fi
if want nginx; then
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
    http2_max_requests 1000000;
    upstream up {
        server 127.0.0.1:$UP_PORT;
        keepalive 128;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PLAIN;
        listen 127.0.0.1:$NGINX_TLS ssl http2;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        location / {
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
EOF
	start nginx nginx -p "$work/nginx" -c "$work/nginx.conf" -g 'daemon off;'
	pid[nginx]=$!
	wait_url nginx "https://127.0.0.1:$NGINX_TLS/"
fi
for p in baton haproxy nginx; do
	if ! want "$p"; then continue; fi
	plain=${p^^}_PLAIN tls=${p^^}_TLS
	proc=$p
	[ "$p" = baton ] && proc=baton-tls
	[ "$p" = baton ] && plainproc=baton || plainproc=$p
	paths+=(
		"$p, HTTP/1.1|$plainproc|http://127.0.0.1:${!plain}/|h1"
		"$p, HTTP/1.1+TLS|$proc|https://127.0.0.1:${!tls}/|h1"
		"$p, h2 ($CONNS connections)|$proc|https://127.0.0.1:${!tls}/|h2"
		"$p, h2 (1 connection, $CONNS streams)|$proc|https://127.0.0.1:${!tls}/|h2-shared"
	)
done

# loadrun URL PROTO DURATION: one closed-loop run, printed as bench/load
# prints it (one JSON object: requests, errors, rps, p50_ms, p99_ms).
loadrun() {
	local url=$1 proto=$2 d=$3
	case $LOADER in
	go)
		local extra=()
		case $proto in
		h2) extra=(-h2) ;;
		h2-shared) extra=(-h2 -h2-shared) ;;
		esac
		"$load" -client go "${extra[@]}" -url "$url" -host bench.localhost -c "$CONNS" -d "$d" -warmup 0 -n 100000000
		;;
	h2load)
		local extra=(-c "$CONNS" -m 1)
		case $proto in
		h1) extra+=(--h1) ;;
		h2-shared) extra=(-c 1 -m "$CONNS") ;;
		esac
		# h2load reports latency as mean and sd only: p50/p99 are left out.
		# A run that does not end (h2load has been seen to hang) counts
		# as an error with no requests.
		timeout 30 h2load "${extra[@]}" -t 1 -D "$d" -H ':authority: bench.localhost' "$url" 2>&1 | awk '
			/^finished in/ { rps = $4 + 0 }
			/^requests:/ { n = $2; ok = $8; fail = $10; err = $12 }
			END { printf "{\"requests\": %d, \"errors\": %d, \"rps\": %f}\n", ok, fail + err, rps }'
		;;
	esac
}

# CPU time (clock ticks) of a process and its children: nginx's workers
# are children of its master.
cputicks() {
	local p
	for p in "$1" $(pgrep -P "$1" || true); do
		awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0
	done | awk '{s+=$1} END {print s+0}'
}
hz=$(getconf CLK_TCK)

log "$ROUNDS rounds x ${#paths[@]} paths, $DURATION each, $CONNS concurrent, loader $LOADER"
for round in $(seq 1 "$ROUNDS"); do
	for i in "${!paths[@]}"; do
		IFS='|' read -r _ proc url proto <<<"${paths[$i]}"
		loadrun "$url" "$proto" "$WARMUP" >/dev/null || true
		c0=$(cputicks "${pid[$proc]}")
		loadrun "$url" "$proto" "$DURATION" >"$work/r.$i.$round.json" || true
		c1=$(cputicks "${pid[$proc]}")
		n=$(jq -r '.requests // 0' "$work/r.$i.$round.json" 2>/dev/null || echo 0)
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
index_of() { # name: the index of the path with that name
	for i in "${!paths[@]}"; do
		if [[ ${paths[$i]} == "$1|"* ]]; then
			echo "$i"
			return
		fi
	done
}

case $LOADER in
go) loader_desc="bench/load -client go" ;;
h2load) loader_desc="$(h2load --version | head -1), 1 thread, one stream per connection (16 streams on one connection for the shared rows)" ;;
esac
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); small GET (29 B), $loader_desc, $CONNS concurrent, median of $ROUNDS interleaved rounds of $DURATION. Proxies: bench/batonproxy; HAProxy $(haproxy -v 2>/dev/null | sed -n '1s/^[^ ]* [^ ]* \([^ ]*\).*/\1/p'), 2 threads; nginx $(nginx -v 2>&1 | cut -d/ -f2), 2 workers; the same P-256 certificate, TLS 1.3."
echo
echo "| path | req/s | ratio to direct | ratio to its HTTP/1.1+TLS | errors | CPU µs/req (proxy, or upstream for direct) |"
echo "|---|---:|---:|---:|---:|---:|"
direct=$(median 0 rps)
for i in "${!paths[@]}"; do
	IFS='|' read -r name _ _ _ <<<"${paths[$i]}"
	rps=$(median "$i" rps)
	tls_rps=$direct
	if [[ $name == *", "* && $name != direct* ]]; then
		tls_rps=$(median "$(index_of "${name%%, *}, HTTP/1.1+TLS")" rps)
	fi
	errs=$(for round in $(seq 1 "$ROUNDS"); do jq -r '.errors // 0' "$work/r.$i.$round.json"; done | awk '{s+=$1} END {print s+0}')
	printf '| %s | %.0f | %.2f | %.2f | %s | %s |\n' "$name" "$rps" \
		"$(awk -v a="$rps" -v b="$direct" 'BEGIN {print (b > 0 ? a/b : 0)}')" \
		"$(awk -v a="$rps" -v b="$tls_rps" 'BEGIN {print (b > 0 ? a/b : 0)}')" \
		"$errs" "$(median "$i" cpu_us c)"
done
