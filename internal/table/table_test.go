package table

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	long := strings.Repeat("é", 300)
	for _, tc := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"short stays", "Sara Curtis", 20, "Sara Curtis"},
		{"exactly n stays", "abcde", 5, "abcde"},
		{"one over is cut", "abcdef", 5, "abcd…"},
		{"runes, not bytes", long, 10, strings.Repeat("é", 9) + "…"},
		{"line breaks folded", "a\nb\tc", 10, "a b c"},
		{"no limit", long, 0, long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Cut(tc.in, tc.n)
			if got != tc.want {
				t.Errorf("Cut(%.20q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
			if tc.n > 0 && utf8.RuneCountInString(got) > tc.n {
				t.Errorf("%d characters, more than %d", utf8.RuneCountInString(got), tc.n)
			}
		})
	}
}

func TestTableCutsCells(t *testing.T) {
	var b bytes.Buffer
	tb := New(&b, Column{"NAME", 12}, Column{"COMMENT", 30})
	tb.Row(strings.Repeat("N", 300), strings.Repeat("c", 20000))
	tb.Row("Sara", "ok")
	if err := tb.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header and 2 rows, got %q", b.String())
	}
	for _, l := range lines {
		if n := utf8.RuneCountInString(l); n > 12+2+30 {
			t.Errorf("line of %d characters: %.80q", n, l)
		}
	}
	if !strings.Contains(lines[1], strings.Repeat("N", 11)+"…") || !strings.Contains(lines[1], strings.Repeat("c", 29)+"…") {
		t.Errorf("cells not cut with an ellipsis: %.120q", lines[1])
	}
}
