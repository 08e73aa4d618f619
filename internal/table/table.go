// Package table prints the aligned tables of the commands (`dlq list`,
// `trace`, `stats`) with every cell cut to its column's width, so one long
// value (a 300-character name, a 20,000-character comment) cannot push the
// rest of a line off the screen. The full values stay in `show` and
// `--json`.
package table

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Ellipsis ends a value that was cut.
const Ellipsis = "…"

// Cut is s on one line (line breaks and tabs folded to spaces), at most n
// characters long, the last of them an ellipsis when something was cut; n
// ≤ 0 keeps s whole.
func Cut(s string, n int) string {
	s = oneLine(s)
	if n <= 0 {
		return s
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + Ellipsis
	}
	return s
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\n\r\t") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Column is a column's title and the widest its cells may be (0: no
// limit).
type Column struct {
	Title string
	Max   int
}

// Table writes rows aligned under a header.
type Table struct {
	tw   *tabwriter.Writer
	cols []Column
}

// New starts a table on w and writes its header.
func New(w io.Writer, cols ...Column) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 2, 4, 2, ' ', 0), cols: cols}
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.Title
	}
	fmt.Fprintln(t.tw, strings.Join(titles, "\t"))
	return t
}

// Row writes one row; each cell is cut to its column's width.
func (t *Table) Row(cells ...string) {
	out := make([]string, len(cells))
	for i, c := range cells {
		n := 0
		if i < len(t.cols) {
			n = t.cols[i].Max
		}
		out[i] = strings.ReplaceAll(Cut(c, n), "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(out, "\t"))
}

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }
