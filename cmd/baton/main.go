// Command baton is the deployment coordinator and app host; see `baton --help`.
package main

import (
	"context"
	"os"

	"github.com/batonhq/baton/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
