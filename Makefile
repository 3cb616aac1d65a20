.PHONY: demo test build bench bench-proxies bench-deploy bench-images bench-scale

# Build baton, serve, deploy and redeploy the example (baton builds it: its
# [build] step). Data in $BATON_DATA, default ~/.local/state/baton-demo:
# outside the module, so `go vet ./...` never walks into unpacked revisions.
demo:
	./scripts/demo.sh

# The whole test suite (what CI runs).
test:
	./test.sh

build:
	go build -o bin/baton ./cmd/baton

.PHONY: reliability

# The reliability suite's long form: 200 deployments with kill -9 of baton at
# random points, app instances crashing in every phase, a full disk during
# extraction, a storm of 200 deploy requests; invariants checked after each.
# Prints the seed (RELIABILITY_SEED=N reproduces a run) and writes the counts
# to e2e/reliability-summary.txt.
reliability:
	go test -race -count=1 -timeout 3h -run Reliability ./e2e/ -v -reliability.long -reliability.seed $(or $(RELIABILITY_SEED),0)

# Go benchmarks of the proxy: routing lookup and request path (ns/op, allocs/op).
bench:
	go test -run '^$$' -bench . -benchmem ./proxy/

# baton's proxy side by side with HAProxy, nginx, Caddy, fasthttp and a TCP
# relay, in one run per load client: the two committed runs, hey
# (bench/results.md) and the raw client (bench/results-raw.md), with their
# charts in docs/. About 20 minutes; installs haproxy and nginx-light with
# apt-get and builds Caddy and hey when missing.
bench-proxies:
	LOADER=hey bench/proxies.sh
	LOADER=raw OUT=bench/results-raw.md CHART=docs/proxy-bench-raw.svg bench/proxies.sh

# 100 back-to-back deployments and 20 slot swaps of examples/hello under a
# steady load through baton's proxy: failed requests (must be 0), latency in
# steady state and around each switch, each deployment's time split into
# baton's overhead and the app's start. Writes bench/results-deploy.md.
# ARGS passes flags, e.g. make bench-deploy ARGS='-deploys 10 -swaps 2'.
bench-deploy:
	go build -o bin/baton ./cmd/baton
	go build -o bin/hello ./examples/hello
	go build -o bin/deployload ./bench/deployload
	bin/deployload -baton bin/baton -hello bin/hello $(ARGS)

# A container image deploy (cold and warm) beside the same app as an
# archive: bench/results-images.md. Needs runc.
bench-images:
	go build -o bin/baton ./cmd/baton
	go build -o bin/deployload ./bench/deployload
	bin/deployload -baton bin/baton -images 5 $(ARGS)

# 1,000 apps × 3 slots registered through the API; status of all and of one
# app; restart of baton serve until /readyz and the proxy answer; memory
# (VmRSS, VmHWM) between stages; 1,000 concurrent deployment requests to one
# app, each followed to its final state. Writes bench/results-scale.md.
bench-scale:
	go build -o bin/baton ./cmd/baton
	go build -o bin/hello ./examples/hello
	go build -o bin/scale ./bench/scale
	bin/scale -baton bin/baton -hello bin/hello $(ARGS)
