// Command packdir writes the zip artifact.Pack makes of a folder (what
// `baton deploy APP DIR` uploads) to standard output. The end-to-end tests
// pack the folders they deploy with it: in their own binary, built with
// the race detector, deflating a folder that holds the example binary
// takes about five seconds of CPU; here, a third of one.
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/batonhq/baton/artifact"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: packdir DIR")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	err := artifact.Pack(os.Args[1], w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
