// Package testparallel sets a test binary's default -parallel, for test
// packages whose tests mostly wait on child processes and the network
// rather than use the CPU.
package testparallel

import (
	"flag"
	"strconv"
)

// Default sets -test.parallel to n unless the command line gave it. Call
// it from TestMain before m.Run.
func Default(n int) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
