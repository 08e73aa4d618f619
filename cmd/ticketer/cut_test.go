package main

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// A 300-character name and a 20,000-character comment are cut with an
// ellipsis in the tables of dlq list and trace; dlq show and --json keep
// them whole.
func TestLongValuesAreCutInTables(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	name := "Sara " + strings.Repeat("Longname", 37) // 301 characters: more than the summary's 255
	comment := strings.Repeat("word ", 4000)
	cols := form.WithValue(form.WithValue(samples[0].Columns(), "newusername", form.Text(name)), "Comments", form.Text(comment))
	ev := ticketertest.RowEvent(cols, 7)
	h.Publish(ev)
	h.Start()
	h.WaitFor("the dead letter", 20*time.Second, func() bool { return len(h.DLQ()) == 1 })
	h.WaitFor("the index", 10*time.Second, func() bool { out, _ := h.cmd("trace", "id=7", "--json"); return strings.Contains(out, name) })

	maxLine := func(what, out string) {
		t.Helper()
		for _, l := range strings.Split(out, "\n") {
			if n := utf8.RuneCountInString(l); n > 400 {
				t.Errorf("%s: a line of %d characters: %.100q…", what, n, l)
			}
		}
		if strings.Contains(out, name) || strings.Contains(out, comment) {
			t.Errorf("%s prints a long value whole", what)
		}
		if !strings.Contains(out, "…") {
			t.Errorf("%s: no ellipsis:\n%s", what, out)
		}
	}
	maxLine("dlq list", h.mustCmd("dlq", "list"))
	maxLine("trace", h.mustCmd("trace", "id=7"))
	// stats prints counts and durations only: no value of a request
	// reaches its table, so there is nothing to cut.
	if show := h.mustCmd("dlq", "show", "1"); !strings.Contains(show, name) {
		t.Error("dlq show does not print the name whole")
	}
	if js := h.mustCmd("dlq", "list", "--json"); !strings.Contains(js, name) {
		t.Error("dlq list --json does not keep the name whole")
	}
}
