.PHONY: demo test build bench

# Build baton and the example app, serve, deploy and redeploy the example.
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
