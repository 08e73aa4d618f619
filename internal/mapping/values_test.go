package mapping

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/cowjacket/formjira/internal/ticket"
)

// valuesYAML maps sample columns onto fields of every kind in valuesMeta.
const valuesYAML = `
mode: platform
api_version: 2
project: CP
issue_type: "10003"
summary: 'Phone request: {{col "newusername"}}'
fields:
  - {column: phonenumber, field: customfield_1, type: text}
  - {column: job,         field: customfield_2, type: text, escape: true}
  - {column: emailaddress, field: customfield_3, type: user}
  - {column: samplename,  field: customfield_4, type: datetime}
  - {column: costcenter,  field: customfield_5, type: number}
`

func valuesMeta() *ticket.Meta {
	f := func(id, typ string) ticket.FieldMeta { return ticket.FieldMeta{ID: id, Name: id, Type: typ} }
	return &ticket.Meta{Fields: map[string]ticket.FieldMeta{
		"summary":       {ID: "summary", Name: "Summary", Type: "string", Required: true},
		"labels":        {ID: "labels", Name: "Labels", Type: "array", Items: "string"},
		"customfield_1": f("customfield_1", "string"), "customfield_2": f("customfield_2", "string"),
		"customfield_3": f("customfield_3", "user"), "customfield_4": f("customfield_4", "datetime"),
		"customfield_5": f("customfield_5", "number"),
	}}
}

// TestValuesAsJiraTakesThem: a valid value reaches Jira as typed or in
// Jira's own form, never mangled or refused; what Jira would refuse is
// refused here, naming the column and field.
func TestValuesAsJiraTakesThem(t *testing.T) {
	m := mustParse(t, valuesYAML)
	build := func(changes map[string]*string) (map[string]any, error) {
		t.Helper()
		base := map[string]*string{"emailaddress": ptr("712020:0e2b9a2c"), "samplename": ptr("2025-10-28T09:30:00Z"), "costcenter": ptr("5540221908")}
		for k, v := range changes {
			base[k] = v
		}
		req, err := m.Build(saraWith(t, base), valuesMeta())
		if err != nil {
			return nil, err
		}
		return req.Fields, nil
	}
	for _, tc := range []struct {
		name, column, value, field string
		want                       any // the JSON Jira gets, or "" with err
		err                        string
	}{
		{"one-line text as typed (plain-text renderer)", "phonenumber", "+44 20 7946 0958", "customfield_1", "+44 20 7946 0958", ""},
		{"escape: true for a wiki-rendered field", "job", "Sales - EMEA [x]", "customfield_2", `Sales \- EMEA \[x\]`, ""},
		{"a user field takes an account id", "emailaddress", "5b10ac8d82e05b22cc7d4ef5", "customfield_3", map[string]any{"accountId": "5b10ac8d82e05b22cc7d4ef5"}, ""},
		{"a user field refuses an e-mail", "emailaddress", "sara@example.com", "", nil, `column "emailaddress" → customfield_3: "sara@example.com" is an e-mail address, not an account id`},
		{"PostgreSQL's whole-hour offset", "samplename", "2025-10-28 09:30:00+02", "customfield_4", "2025-10-28T07:30:00.000+0000", ""},
		{"with a fraction", "samplename", "2025-10-28 09:30:00.5+02", "customfield_4", "2025-10-28T07:30:00.500+0000", ""},
		{"an HTML datetime-local value", "samplename", "2025-10-28T09:30", "customfield_4", "2025-10-28T09:30:00.000+0000", ""},
		{"a half-hour offset", "samplename", "2025-10-28 09:30:00+05:30", "customfield_4", "2025-10-28T04:00:00.000+0000", ""},
		{"a number keeps its digits", "costcenter", "9007199254740993", "customfield_5", json.Number("9007199254740993"), ""},
		{"a number in another spelling", "costcenter", "0012.50", "customfield_5", json.Number("12.5"), ""},
		{"not a number", "costcenter", "12,5", "", nil, `column "costcenter" → customfield_5: "12,5" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, err := build(map[string]*string{tc.column: ptr(tc.value)})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(fields[tc.field])
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Errorf("%s = %s, want %s", tc.field, got, want)
			}
		})
	}
}

// TestLengthsAsJiraCounts: Jira (Java) counts a limit in UTF-16 code
// units, an emoji two: the summary is cut to 255 of those without
// splitting one, and a one-line field of 200 emoji (400 units) is refused
// before Jira burns a key on it.
func TestLengthsAsJiraCounts(t *testing.T) {
	m := mustParse(t, valuesYAML)
	emoji := strings.Repeat("😀", 200)
	req, err := m.Build(saraWith(t, map[string]*string{"newusername": ptr(emoji), "emailaddress": ptr("x1"), "samplename": nil, "costcenter": nil}), valuesMeta())
	if err != nil {
		t.Fatal(err)
	}
	s := req.Fields["summary"].(string)
	if n := len(utf16.Encode([]rune(s))); n > 255 || !strings.HasSuffix(s, "…") || strings.ContainsRune(s, '\uFFFD') {
		t.Errorf("summary of %d UTF-16 units: %q", n, s)
	}
	_, err = m.Build(saraWith(t, map[string]*string{"phonenumber": ptr(emoji), "emailaddress": ptr("x1"), "samplename": nil, "costcenter": nil}), valuesMeta())
	if err == nil || !strings.Contains(err.Error(), `column "phonenumber" → customfield_1: is 400 characters; Jira allows at most 255`) {
		t.Errorf("200 emoji in a one-line field: %v", err)
	}
}

// TestFilledByTheMappingCountsAsMapped: a required Customer Request Type
// is set by request_type, a required reporter by reporter: requester; they
// are no "required by Jira but not mapped" problem.
func TestFilledByTheMappingCountsAsMapped(t *testing.T) {
	m := shipped(t, shippedMapping, 3)
	meta := platformMeta(t)
	id := meta.RequestTypeField()
	if id == "" {
		t.Fatal("the sandbox's createmeta has no Customer Request Type field")
	}
	fm := meta.Fields[id]
	fm.Required = true
	meta.Fields[id] = fm
	r := meta.Fields["reporter"]
	r.Required, r.HasDefault = true, false
	meta.Fields["reporter"] = r
	if _, err := m.Build(saraWith(t, nil), meta); err != nil {
		t.Errorf("required request type and reporter, both filled by the mapping: %v", err)
	}
}
