package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadHead(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		limit          int
		err            error
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\nrest", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 100, nil},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\nHost: a\n\n", 100, nil},
		{"leading CRLF skipped", "\r\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", 100, nil},
		{"over the limit", "GET / HTTP/1.1\r\nX: " + strings.Repeat("x", 100) + "\r\n\r\n", "", 50, errHeadTooLarge},
		{"long line within limit", "GET / HTTP/1.1\r\nX: " + strings.Repeat("x", 100) + "\r\n\r\n", "GET / HTTP/1.1\r\nX: " + strings.Repeat("x", 100) + "\r\n\r\n", 200, nil},
		{"clean EOF", "", "", 100, io.EOF},
		{"cut short", "GET / HTTP/1.1\r\nHo", "", 100, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A small reader buffer makes long lines arrive in pieces.
			br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
			got, err := readHead(br, nil, tc.limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && string(got) != tc.want {
				t.Errorf("head %q, want %q", got, tc.want)
			}
		})
	}
}

func TestChunkSize(t *testing.T) {
	for _, tc := range []struct {
		line string
		n    int64
		ok   bool
	}{
		{"0\r\n", 0, true},
		{"1a\r\n", 26, true},
		{"FF;ext=1\r\n", 255, true},
		{"\r\n", 0, false},
		{"-1\r\n", 0, false},
		{"zz\r\n", 0, false},
		{"1234567890abcdef0\r\n", 0, false}, // overflow
	} {
		n, ok := chunkSize([]byte(tc.line))
		if n != tc.n || ok != tc.ok {
			t.Errorf("chunkSize(%q) = %d %v, want %d %v", tc.line, n, ok, tc.n, tc.ok)
		}
	}
}

func TestCopyChunkedChecksFraming(t *testing.T) {
	for _, tc := range []struct{ in, want, dechunked string }{
		{"3\r\nabc\r\n0\r\n\r\n", "3\r\nabc\r\n0\r\n\r\n", "abc"},
		{"3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n", "3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: v\r\n\r\n", "abcd"},
	} {
		for _, dechunk := range []bool{false, true} {
			var out bytes.Buffer
			w := &wbuf{w: &bufConn{Buffer: &out}}
			if err := copyChunked(w, bufio.NewReader(strings.NewReader(tc.in+"NEXT")), nil, dechunk, 100); err != nil {
				t.Fatalf("%q: %v", tc.in, err)
			}
			w.flush()
			want := tc.want
			if dechunk {
				want = tc.dechunked
			}
			if out.String() != want {
				t.Errorf("copyChunked(%q, dechunk=%v) wrote %q, want %q", tc.in, dechunk, out.String(), want)
			}
		}
	}
	for _, bad := range []string{"3\r\nabcd\r\n0\r\n\r\n", "x\r\n", "3\r\nab", "0\r\nT: " + strings.Repeat("v", 200) + "\r\n\r\n"} {
		w := &wbuf{w: &bufConn{Buffer: &bytes.Buffer{}}}
		if err := copyChunked(w, bufio.NewReader(strings.NewReader(bad)), nil, false, 100); err == nil {
			t.Errorf("copyChunked(%q) accepted it", bad)
		}
	}
}

func TestWebSocketFrameBoundaries(t *testing.T) {
	var frames bytes.Buffer
	writeFrame(&frames, 0x1, []byte("hi"), false)
	writeFrame(&frames, 0x2, bytes.Repeat([]byte("x"), 300), false)
	writeFrame(&frames, 0x2, bytes.Repeat([]byte("y"), 70000), true)
	all := frames.Bytes()
	var f wsFrames
	// Fed in odd pieces, it is at a boundary exactly at frame ends.
	ends := map[int]bool{4: true, 4 + 4 + 300: true, len(all): true}
	for i := range all {
		f.feed(all[i : i+1])
		if got := f.atBoundary(); got != ends[i+1] {
			t.Fatalf("after %d bytes: atBoundary %v, want %v", i+1, got, ends[i+1])
		}
	}
}
