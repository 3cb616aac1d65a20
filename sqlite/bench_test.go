package sqlite_test

import (
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/storetest"
)

func BenchmarkLeases(b *testing.B) {
	storetest.BenchmarkLeases(b, func(t testing.TB) baton.Store { return open(t) })
}
