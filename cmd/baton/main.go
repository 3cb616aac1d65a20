// Command baton is the deployment coordinator and app host; see `baton --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonhq/baton/cli"
	"github.com/batonhq/baton/internal/schedtune"
)

func main() {
	if cli.Serves(os.Args[1:]) {
		schedtune.Apply() // the server starts again, tuned; see the package
	}
	// Ctrl-C or SIGTERM ends the command's context, so a command that
	// waits can say what goes on without it; a second Ctrl-C kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
