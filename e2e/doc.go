// Package e2e holds baton's end-to-end tests: they build the real baton and
// example binaries, run `baton serve` as a child process, and deploy through
// the API and the CLI while sending traffic through the proxy.
package e2e
