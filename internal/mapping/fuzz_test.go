package mapping

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cowjacket/formjira/internal/ticket"
)

// FuzzBuild feeds arbitrary text to the free-text columns: Build never
// panics, a built summary is one line of at most 255 characters, the
// request marshals, and v2 text has no unescaped link or macro character.
func FuzzBuild(f *testing.F) {
	for _, s := range [][3]string{
		{"Sara Curtis", "Replace faulty handset", "Data Engineer"},
		{"[~accountid:123]", "{color:red}x{color}\n!image.png!", "[a|http://x]"},
		{strings.Repeat("é", 300), strings.Repeat("line\n", 50), "\r\n\t"},
		{"\x00\xff\u2028", "h1. x\n\n# y", "&#92; \\\\"},
		{"", "   ", "\n"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	v2 := shipped(f, shippedMapping, 2)
	v3 := shipped(f, shippedMapping, 3)
	jsm := shipped(f, shippedMappingJSM, 0)
	pmeta, jmeta := platformMeta(f), jsmMeta(f)
	f.Fuzz(func(t *testing.T, name, comments, job string) {
		ev := saraWith(t, map[string]*string{"newusername": &name, "Comments": &comments, "job": &job})
		for _, c := range []struct {
			m    *Mapping
			meta *ticket.Meta
		}{{v2, pmeta}, {v3, pmeta}, {jsm, jmeta}} {
			req, err := c.m.Build(ev, c.meta)
			if err != nil {
				if !errors.Is(err, ErrUnmappable) || len(Problems(err)) == 0 {
					t.Fatalf("error %v is not an explained ErrUnmappable", err)
				}
				continue
			}
			fields := req.Fields
			if c.m.Mode() == ModeJSM {
				fields = req.RequestFieldValues
			}
			s, _ := fields["summary"].(string)
			if s == "" || strings.ContainsAny(s, "\r\n") || utf8.RuneCountInString(s) > 255 || !utf8.ValidString(s) {
				t.Fatalf("summary %q (%d characters)", s, utf8.RuneCountInString(s))
			}
			if _, err := json.Marshal(req.Payload()); err != nil {
				t.Fatal(err)
			}
			if c.m.adf() {
				continue
			}
			for _, id := range []string{"customfield_10070", "customfield_10074", "customfield_10082"} {
				v, _ := fields[id].(string)
				if utf8.RuneCountInString(v) > 32767 {
					t.Fatalf("%s is %d characters", id, utf8.RuneCountInString(v))
				}
				if id != "customfield_10082" {
					continue // one-line text: plain text in Jira Cloud, sent as typed
				}
				for i, r := range v {
					if strings.ContainsRune("[]{}!|", r) && (i == 0 || v[i-1] != '\\') {
						t.Fatalf("%s: unescaped %q at %d in %q", id, r, i, v)
					}
				}
			}
		}
	})
}
