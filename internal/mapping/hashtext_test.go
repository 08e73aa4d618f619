package mapping

import (
	"os"
	"strings"
	"testing"
)

// TestJSMRequestCarriesHashInDescription: a request type without a labels
// field gets its hash label only in a later edit, so the create itself must
// carry the record hash verbatim (reconciliation searches text ~ for it):
// the shipped mapping shows it once; a template without {{.Hash}} (or no
// description at all) gets a "Record hash:" line appended.
func TestJSMRequestCarriesHashInDescription(t *testing.T) {
	ev := saraWith(t, nil)
	data, err := os.ReadFile(shippedMappingJSM)
	if err != nil {
		t.Fatal(err)
	}
	yml := string(data)
	start, end := strings.Index(yml, "\ndescription: |"), strings.Index(yml, "\nfields:")
	if start < 0 || end < start || !strings.Contains(yml[start:end], "\n  Record hash: {{.Hash}}\n") {
		t.Fatalf("%s: no description ending in the record hash", shippedMappingJSM)
	}
	withDesc := func(desc string) *Mapping { return mustParse(t, yml[:start]+desc+yml[end:]) }
	for _, tc := range []struct {
		name string
		m    *Mapping
		want string // the description's end
	}{
		{"shipped", shipped(t, shippedMappingJSM, 0), "\n\nRecord hash: " + ev.GetHash()},
		{"no hash in template", withDesc("\ndescription: 'New user: {{col \"newusername\"}}'\n"),
			"New user: Sara Curtis\n\nRecord hash: " + ev.GetHash()},
		{"no description", withDesc(""), "Record hash: " + ev.GetHash()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := tc.m.Build(ev, jsmMeta(t))
			if err != nil {
				t.Fatal(err)
			}
			d, _ := req.RequestFieldValues["description"].(string)
			if !req.LabelsPending || !strings.HasSuffix(d, tc.want) || strings.Count(d, ev.GetHash()) != 1 {
				t.Errorf("labels pending %v, description %q; want it to end %q, the hash once", req.LabelsPending, d, tc.want)
			}
		})
	}
	t.Run("no description field either", func(t *testing.T) {
		meta := jsmMeta(t)
		delete(meta.Fields, "description")
		_, err := withDesc("").Build(ev, meta)
		ps := Problems(err)
		if len(ps) != 1 || ps[0].FieldID != "description" || !strings.Contains(ps[0].Message, "record hash") {
			t.Errorf("problems %v", ps)
		}
	})
}
