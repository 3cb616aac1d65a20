package artifact

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// seedEntries are archives worth mutating: good ones and every hostile
// shape the table tests know.
func seedEntries() [][]entry {
	return [][]entry{
		{dir("app/"), exe("app/run.sh", "#!/bin/sh\n"), file("app/a/b.txt", "b"), symlink("app/cur", "a")},
		{file("../x", "x")},
		{file("/abs", "x")},
		{file(`..\x`, "x")},
		{symlink("l", "/etc")},
		{symlink("l", "..")},
		{dir("d/"), symlink("d/l", ".."), symlink("x", "d/l/.."), file("x/evil", "x")},
		{symlink("a", "b"), symlink("b", "a")},
		{dir("a/"), file("a", "x")},
		{file("a", "x"), symlink("b", "a"), file("b", "y")},
		{file("zeros", strings.Repeat("\x00", 64<<10))},
	}
}

func FuzzExtractZip(f *testing.F) {
	for _, es := range seedEntries() {
		f.Add(makeZip(f, es...))
	}
	f.Add(makeZip(f, entry{name: "p", mode: fs.ModeNamedPipe}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzExtract(t, KindZip, data)
	})
}

func FuzzExtractTar(f *testing.F) {
	for _, es := range seedEntries() {
		f.Add(makeTarGz(f, es...))
	}
	f.Add(makeTarGz(f, exe("t", "x"), hardlink("h", "t"), hardlink("o", "../t"), entry{name: "c", tarType: tar.TypeChar}))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzExtract(t, KindTarGz, data)
	})
}

// fuzzExtract checks the properties every input must keep: no panic, a
// baton error of the expected codes or success, nothing outside dest, and
// on success no symlink that resolves outside dest.
func fuzzExtract(t *testing.T, kind string, data []byte) {
	r, err := extractBytes(t, context.Background(), kind, data, Limits{MaxBytes: 1 << 20, MaxFiles: 200})
	if err != nil {
		var be *baton.Error
		if !errors.As(err, &be) || (be.Code != baton.EUNPROCESSABLE && be.Code != baton.ETOOLARGE) {
			t.Fatalf("Extract = %v (%T), want nil or an unprocessable/too-large *baton.Error", err, err)
		}
	}
	checkNothingEscaped(t, r, err == nil)
	if err != nil {
		return
	}
	dest, err := filepath.EvalSymlinks(r.dest)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(r.dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		to, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling or a loop: it leads nowhere
		}
		if to != dest && !strings.HasPrefix(to, dest+string(os.PathSeparator)) {
			t.Errorf("symlink %s resolves to %s, outside %s", p, to, dest)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzExtractEntries builds well-formed archives from a list of entries so
// the fuzzer spends its time on names and link targets rather than on
// checksums. Each line is "f NAME", "x NAME" (executable), "d NAME",
// "l NAME TARGET" or "h NAME TARGET" (hard link, tar only).
func FuzzExtractEntries(f *testing.F) {
	f.Add("d d/\nl d/l ..\nl x d/l/..\nf x/evil")
	f.Add("f a\nl b a\nh c a\nf b\nl e b/../a")
	f.Add("l a ./b/../../c\nd b/\nl b/c ../..")
	f.Add("f ../x\nf ..\\x\nl l /etc")
	f.Add("x bin/run\nl cur bin\nf cur/x\nh o bin/run")
	f.Fuzz(func(t *testing.T, spec string) {
		var entries []entry
		for line := range strings.SplitSeq(spec, "\n") {
			fields := strings.SplitN(line, " ", 3)
			if len(fields) < 2 {
				continue
			}
			target := ""
			if len(fields) == 3 {
				target = fields[2]
			}
			switch fields[0] {
			case "f":
				entries = append(entries, file(fields[1], "x"))
			case "x":
				entries = append(entries, exe(fields[1], "x"))
			case "d":
				entries = append(entries, entry{name: fields[1], mode: fs.ModeDir | 0o755})
			case "l":
				entries = append(entries, symlink(fields[1], target))
			case "h":
				entries = append(entries, hardlink(fields[1], target))
			}
		}
		if len(entries) == 0 || len(entries) > 20 {
			return
		}
		if tarData, ok := tryArchive(func(tb testing.TB) []byte { return makeTarGz(tb, entries...) }); ok {
			fuzzExtract(t, KindTarGz, tarData)
		}
		for _, e := range entries {
			if e.tarType != 0 {
				return
			}
		}
		if zipData, ok := tryArchive(func(tb testing.TB) []byte { return makeZip(tb, entries...) }); ok {
			fuzzExtract(t, KindZip, zipData)
		}
	})
}

// tryArchive runs build and reports false if the archive writer refused
// the entries (names it cannot encode), instead of failing the test.
func tryArchive(build func(testing.TB) []byte) (data []byte, ok bool) {
	rec := &refusalTB{}
	defer func() {
		if r := recover(); r != nil && r != errRefused {
			panic(r)
		}
	}()
	return build(rec), true
}

var errRefused = errors.New("archive writer refused the entries")

// refusalTB is a testing.TB whose Fatal panics with errRefused.
type refusalTB struct{ testing.TB }

func (*refusalTB) Helper()               {}
func (*refusalTB) Fatal(...any)          { panic(errRefused) }
func (*refusalTB) Fatalf(string, ...any) { panic(errRefused) }
