.PHONY: demo test build bench

# Build baton and the example app, serve, deploy and redeploy the example.
demo:
	./scripts/demo.sh

# The whole test suite (what CI runs).
test:
	./test.sh

build:
	go build -o bin/baton ./cmd/baton
