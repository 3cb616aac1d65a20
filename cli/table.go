package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// termWidth is the width tables are fitted to: $COLUMNS, else the width of
// the terminal behind stdout; 0 when stdout is no terminal, so piped
// output is never cut.
func (e *env) termWidth() int {
	if e.width != 0 {
		return e.width
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	f, ok := e.stdout.(*os.File)
	if !ok {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 0
	}
	return int(ws.Col)
}

// tableGap is the space between columns of every table.
const tableGap = 2

// printFitted prints rows (the first is the header) as an aligned table no
// wider than width, by cutting the cells of column cut (with "…"; never
// below 12 characters). It reports whether it cut anything.
func printFitted(w io.Writer, rows [][]string, width, cut int) bool {
	cutAny := false
	if width > 0 && len(rows) > 0 {
		others := 0
		for c := range rows[0] {
			if c == cut {
				continue
			}
			m := 0
			for _, r := range rows {
				m = max(m, utf8.RuneCountInString(r[c]))
			}
			others += m + tableGap
		}
		room := max(width-others-1, 12)
		for _, r := range rows {
			if utf8.RuneCountInString(r[cut]) > room {
				r[cut] = string([]rune(r[cut])[:room-1]) + "…"
				cutAny = true
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, tableGap, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return cutAny
}
