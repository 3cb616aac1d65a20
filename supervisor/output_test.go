package supervisor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCopyLines(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"lines", "a\nb\n", []string{"a", "b"}},
		{"empty lines", "\n\nc\n", []string{"", "", "c"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"last line without newline", "a\nb", []string{"a", "b"}},
		{"nothing", "", nil},
		{"line of exactly the cap", long + "\nnext\n", []string{long, "next"}},
		{"long line cut at the cap", long + "yyyy\nnext\n", []string{long, "next"}},
		{"very long line cut once", long + long + long + "\nnext", []string{long, "next"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			copyLines(strings.NewReader(tt.in), func(line []byte) { got = append(got, string(line)) })
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d lines %.80q, want %d lines %.80q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestOutputSinkPrefixesLines(t *testing.T) {
	var buf syncBuffer
	o := outputSink{w: &buf}
	o.writeLine(1, []byte("hello"))
	o.writeLine(12, []byte(""))
	if got, want := buf.String(), "[1] hello\n[12] \n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	(&outputSink{}).writeLine(1, []byte("nil writer is fine"))
}

func TestTailKeepsLastLines(t *testing.T) {
	var tl tail
	if got := tl.last(5); len(got) != 0 {
		t.Errorf("empty tail: %q", got)
	}
	for i := 1; i <= 25; i++ {
		tl.add(fmt.Sprint(i))
	}
	if got, want := tl.last(5), []string{"21", "22", "23", "24", "25"}; !slices.Equal(got, want) {
		t.Errorf("last(5) = %q, want %q", got, want)
	}
	if got := tl.last(100); len(got) != tailLines || got[0] != "6" {
		t.Errorf("last(100) = %q, want the last %d", got, tailLines)
	}
}
