package mapping

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/ticket"
)

// TestBuildSaraCurtis is sample line 1 through the shipped mapping in all
// three ways of creating, against golden files and field by field.
func TestBuildSaraCurtis(t *testing.T) {
	tests := []struct {
		name, path string
		version    int
		meta       func(testing.TB) *ticket.Meta
	}{
		{"v2", shippedMapping, 2, platformMeta},
		{"v3", shippedMapping, 3, platformMeta},
		{"jsm", shippedMappingJSM, 0, jsmMeta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := shipped(t, tt.path, tt.version)
			ev := saraWith(t, nil)
			req, err := m.Build(ev, tt.meta(t))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "sara-curtis-"+tt.name+".golden.json", req.Payload())

			if req.Hash != ev.Hash || req.HashLabel != ticket.HashLabel(ev.Hash) {
				t.Errorf("hash %q label %q, want %q", req.Hash, req.HashLabel, ev.Hash)
			}
			if want := []string{"web-form", ticket.HashLabel(ev.Hash)}; !reflect.DeepEqual(req.Labels, want) {
				t.Errorf("labels %v, want %v", req.Labels, want)
			}
			fields := req.Fields
			opt := func(value, id string) any {
				if tt.name == "jsm" {
					return map[string]any{"id": id}
				}
				return map[string]any{"value": value}
			}
			if p := req.Requester; p == nil || p.Email != "sara.curtis@example.com" || p.Name != "Sara Curtis" {
				t.Errorf("requester %+v, want Sara Curtis <sara.curtis@example.com>", p)
			}
			if tt.name != "jsm" && (req.Fields["customfield_10010"] != "41" || !req.ReporterIsRequester) {
				t.Errorf("platform: request type %v, reporter is requester %v; want \"41\", true", req.Fields["customfield_10010"], req.ReporterIsRequester)
			}
			if tt.name == "jsm" {
				fields = req.RequestFieldValues
				if req.ServiceDeskID != "4" || req.RequestTypeID != "41" || req.RaiseOnBehalfOf != "" {
					t.Errorf("jsm target %q/%q on behalf of %q (want none until the account is resolved)", req.ServiceDeskID, req.RequestTypeID, req.RaiseOnBehalfOf)
				}
				// ticket.Request type 41 has no labels field: ticketer adds them after.
				if _, ok := fields["labels"]; ok || !req.LabelsPending {
					t.Errorf("jsm labels sent %v, pending %v; want not sent, pending", fields["labels"], req.LabelsPending)
				}
			} else {
				if req.LabelsPending {
					t.Error("platform labels pending")
				}
				if !reflect.DeepEqual(fields["labels"], req.Labels) {
					t.Errorf("labels field %v", fields["labels"])
				}
				if !reflect.DeepEqual(fields["project"], map[string]any{"key": "CP"}) || !reflect.DeepEqual(fields["issuetype"], map[string]any{"id": "10003"}) {
					t.Errorf("project %v issuetype %v", fields["project"], fields["issuetype"])
				}
			}
			handsets, _ := fields["customfield_10078"].([]any)
			wantHandsets := []any{opt("Handset speaker phone", "10400"), opt("Mobile phone", "10402"), opt("SIM card only", "10403")}
			if !reflect.DeepEqual(handsets, wantHandsets) {
				t.Errorf("handsets %v, want three options %v", handsets, wantHandsets)
			}
			for id, want := range map[string]any{
				"summary":           "Phone request: Sara Curtis (Finance)",
				"customfield_10070": "Sara Curtis",
				"customfield_10073": opt("Finance", "10200"),
				"customfield_10076": "5540221908", // text, not a number
				"customfield_10077": opt("New extension including new cabling and socket", "10300"),
				"customfield_10079": opt("Temporary use (three months or less)", "10501"),
				"customfield_10080": "2025-10-28",
				"customfield_10081": "2025-11-22",
				"customfield_10083": "2025-10-24",
			} {
				if !reflect.DeepEqual(fields[id], want) {
					t.Errorf("%s = %#v, want %#v", id, fields[id], want)
				}
			}
			comments := fields["customfield_10082"]
			if tt.name == "v3" {
				if !reflect.DeepEqual(comments, adfDoc("Replace faulty handset")) {
					t.Errorf("v3 comments %v, want an ADF document", comments)
				}
				if d, ok := fields["description"].(map[string]any); !ok || d["type"] != "doc" {
					t.Errorf("v3 description %T, want ADF", fields["description"])
				}
			} else if comments != "Replace faulty handset" {
				t.Errorf("comments %#v", comments)
			}
		})
	}
}

// TestBuildEverySample: all 200 sample rows map cleanly, every way.
func TestBuildEverySample(t *testing.T) {
	evs := sampleEvents(t)
	for _, tt := range []struct {
		name string
		m    *Mapping
		meta *ticket.Meta
	}{
		{"v2", shipped(t, shippedMapping, 2), platformMeta(t)},
		{"v3", shipped(t, shippedMapping, 3), platformMeta(t)},
		{"jsm", shipped(t, shippedMappingJSM, 0), jsmMeta(t)},
	} {
		for i, ev := range evs {
			req, err := tt.m.Build(ev, tt.meta)
			if err != nil {
				t.Errorf("%s: sample %d: %v", tt.name, i+1, err)
				continue
			}
			fields := req.Fields
			if p := req.Requester; p == nil || p.Email != form.String(ev, "emailaddress") || p.Name != form.String(ev, "newusername") {
				t.Errorf("%s: sample %d: requester %+v, want the row's name and e-mail", tt.name, i+1, p)
			}
			if tt.name != "jsm" && (req.Fields["customfield_10010"] != "41" || !req.ReporterIsRequester) {
				t.Errorf("platform: request type %v, reporter is requester %v; want \"41\", true", req.Fields["customfield_10010"], req.ReporterIsRequester)
			}
			if tt.name == "jsm" {
				fields = req.RequestFieldValues
			}
			for _, id := range []string{"summary", "customfield_10070", "customfield_10073", "customfield_10075", "customfield_10076", "customfield_10079", "customfield_10080"} {
				if fields[id] == nil {
					t.Errorf("%s: sample %d: required %s not set", tt.name, i+1, id)
				}
			}
		}
	}
}

// TestBuildUnmappable: rows Jira would refuse are refused first, naming the
// column and the field, every problem at once.
func TestBuildUnmappable(t *testing.T) {
	meta := platformMeta(t)
	m := shipped(t, shippedMapping, 3)
	long := strings.Repeat("x", 300)
	tests := []struct {
		name    string
		changes map[string]*string
		want    []FieldError // Message is matched as a prefix
	}{
		{"invalid option", map[string]*string{"departmentname": ptr("Fiance")}, []FieldError{
			{"customfield_10073", "Department", "departmentname", `"Fiance" is not an allowed value (allowed: Finance, Human Resources, IT, Operations, Sales, Marketing, Legal, Customer Support, Facilities, Procurement)`},
		}},
		{"missing required column", map[string]*string{"dateneededby": nil}, []FieldError{
			{"customfield_10080", "Date needed by", "dateneededby", "required, but the column is NULL"},
		}},
		{"blank required text", map[string]*string{"costcenter": ptr("   ")}, []FieldError{
			{"customfield_10076", "Cost center", "costcenter", "required, but the column is empty"},
		}},
		{"300-character name", map[string]*string{"newusername": &long}, []FieldError{
			{"customfield_10070", "New user name", "newusername", "is 300 characters; Jira allows at most 255"},
		}},
		{"bad checkbox items", map[string]*string{"handsetsandheadsets": ptr("Mobile phone; Pager; Fax")}, []FieldError{
			{"customfield_10078", "Handsets and headsets", "handsetsandheadsets", `"Pager", "Fax" are not allowed values (allowed: Handset speaker phone,`},
		}},
		{"radio", map[string]*string{"timeframe": ptr("Forever")}, []FieldError{
			{"customfield_10079", "Timeframe", "timeframe", `"Forever" is not an allowed value`},
		}},
		{"every problem at once", map[string]*string{"departmentname": ptr("Fiance"), "timeframe": nil, "newusername": &long}, []FieldError{
			{"customfield_10070", "New user name", "newusername", "is 300 characters"},
			{"customfield_10073", "Department", "departmentname", `"Fiance" is not an allowed value`},
			{"customfield_10079", "Timeframe", "timeframe", "required, but the column is NULL"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := m.Build(saraWith(t, tt.changes), meta)
			if err == nil {
				t.Fatalf("built %v, want ErrUnmappable", req.Fields)
			}
			if !errors.Is(err, ErrUnmappable) {
				t.Fatalf("%v is not ErrUnmappable", err)
			}
			got := Problems(err)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %v, want %d", got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.FieldID != w.FieldID || g.FieldName != w.FieldName || g.Column != w.Column || !strings.HasPrefix(g.Message, w.Message) {
					t.Errorf("problem %d = %+v\nwant %+v", i, g, w)
				}
				if !strings.Contains(err.Error(), g.Error()) {
					t.Errorf("error %q lacks %q", err, g.Error())
				}
			}
		})
	}
}

func TestBuildErrorText(t *testing.T) {
	_, err := shipped(t, shippedMapping, 3).Build(saraWith(t, map[string]*string{"departmentname": ptr("Fiance")}), platformMeta(t))
	want := `unmappable: column "departmentname" → customfield_10073 (Department): "Fiance" is not an allowed value (allowed: Finance, Human Resources, IT,`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v\nwant prefix %s", err, want)
	}
	var fe FieldError
	if !errors.As(err, &fe) || fe.FieldID != "customfield_10073" {
		t.Errorf("errors.As FieldError: %+v", fe)
	}
}

// TestBuildNormalises: what a person typed is what they meant.
func TestBuildNormalises(t *testing.T) {
	m := shipped(t, shippedMapping, 3)
	meta := platformMeta(t)
	tests := []struct {
		name    string
		changes map[string]*string
		field   string
		want    any
	}{
		{"select ignores case, sends Jira's spelling", map[string]*string{"departmentname": ptr("  human   resources ")}, "customfield_10073", map[string]any{"value": "Human Resources"}},
		{"empty and duplicate checkbox items dropped", map[string]*string{"handsetsandheadsets": ptr(";mobile phone;; Mobile phone ;SIM card only; ")}, "customfield_10078",
			[]any{map[string]any{"value": "Mobile phone"}, map[string]any{"value": "SIM card only"}}},
		{"checkboxes all empty: not sent", map[string]*string{"handsetsandheadsets": ptr(" ; ;")}, "customfield_10078", nil},
		{"text trimmed and folded", map[string]*string{"job": ptr("  Data\r\n  Engineer\t")}, "customfield_10074", "Data Engineer"},
		{"optional NULL not sent", map[string]*string{"approximateendingdate": nil}, "customfield_10081", nil},
		{"summary newlines collapsed", map[string]*string{"newusername": ptr(" Sara\r\n\nCurtis ")}, "summary", "Phone request: Sara Curtis (Finance)"},
		{"control characters removed", map[string]*string{"samplename": ptr("Sa\x00ra\x07")}, "customfield_10071", "Sara"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := m.Build(saraWith(t, tt.changes), meta)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := req.Fields[tt.field]
			if tt.want == nil {
				if ok {
					t.Errorf("%s sent as %#v, want not sent", tt.field, got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.field, got, tt.want)
			}
		})
	}
}

func TestBuildSummaryTruncated(t *testing.T) {
	m := mustParse(t, `
api_version: 2
project: CP
issue_type: "10003"
summary: '{{col "Comments"}}'
fields: [{column: newusername, field: customfield_10070, type: text}]
`)
	long := strings.Repeat("word ", 100) + "\nend"
	req, err := m.Build(saraWith(t, map[string]*string{"Comments": &long}), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := req.Fields["summary"].(string)
	if n := utf8.RuneCountInString(s); n != 255 && n != 254 || !strings.HasSuffix(s, "…") || strings.ContainsAny(s, "\r\n") {
		t.Errorf("summary %q (%d characters), want ≤ 255 ending in …", s, utf8.RuneCountInString(s))
	}
}

func TestBuildTypes(t *testing.T) {
	m := mustParse(t, `
api_version: 2
project: CP
issue_type: "10003"
summary: x
fields:
  - {column: costcenter, field: customfield_1, type: number}
  - {column: createdat, field: customfield_2, type: datetime}
  - {column: job, field: customfield_3, type: labels, separator: ","}
  - {column: samplename, field: customfield_4, type: user}
  - {column: handsetsandheadsets, field: labels, type: labels, separator: ";"}
`)
	req, err := m.Build(saraWith(t, map[string]*string{"job": ptr("data engineer, ops")}), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := roundTrip(t, req.Fields)
	want := map[string]any{
		"customfield_1": 5540221908.0,
		"customfield_2": "2025-10-24T00:00:00.000+0000",
		"customfield_3": []any{"data-engineer", "ops"},
		"customfield_4": map[string]any{"accountId": "Sara"},
	}
	for id, w := range want {
		if !reflect.DeepEqual(got[id], w) {
			t.Errorf("%s = %#v, want %#v", id, got[id], w)
		}
	}
	wantLabels := []any{"Handset-speaker-phone", "Mobile-phone", "SIM-card-only", ticket.HashLabel(req.Hash)}
	if !reflect.DeepEqual(got["labels"], wantLabels) {
		t.Errorf("labels %v, want %v", got["labels"], wantLabels)
	}

	_, err = m.Build(saraWith(t, map[string]*string{"costcenter": ptr("55-40"), "createdat": nil}), nil)
	ps := Problems(err)
	if len(ps) != 1 || ps[0].FieldID != "customfield_1" || ps[0].Message != `"55-40" is not a number` {
		t.Errorf("problems %v", ps)
	}
}

// A text column holding a bad date (the form table types its dates, but a
// mapping may point a date field at a text column).
func TestBuildBadDate(t *testing.T) {
	m := mustParse(t, `
api_version: 2
project: CP
issue_type: "10003"
summary: x
fields: [{column: job, field: customfield_10080, type: date}]
`)
	_, err := m.Build(saraWith(t, map[string]*string{"job": ptr("2025-02-30")}), nil)
	ps := Problems(err)
	if len(ps) != 1 || ps[0].Message != `"2025-02-30" is not a date (want YYYY-MM-DD)` {
		t.Errorf("problems %v", ps)
	}
}

func TestBuildMappingProblems(t *testing.T) {
	m := mustParse(t, `
api_version: 3
project: CP
issue_type: "10003"
summary: '{{col "nosuchcolumn"}}'
fields:
  - {column: newusername, field: customfield_10070, type: text}
  - {column: comments, field: customfield_10082, type: textarea}
  - {column: job, field: customfield_19999, type: text}
`)
	_, err := m.Build(saraWith(t, nil), platformMeta(t))
	ps := Problems(err)
	got := map[string]string{}
	for _, p := range ps {
		got[p.FieldID] = p.Message
	}
	for id, want := range map[string]string{
		"summary":           `template: column "nosuchcolumn" is not in the event`,
		"customfield_10082": "column is not in the event",
		"customfield_19999": "not a field of the target's create screen",
		"customfield_10073": "required by Jira but not mapped",
		"customfield_10080": "required by Jira but not mapped",
	} {
		if !strings.HasPrefix(got[id], want) {
			t.Errorf("%s: %q, want %q…", id, got[id], want)
		}
	}
	if len(ps) != 8 { // summary, comments, 19999, and 5 required unmapped
		t.Errorf("%d problems: %v", len(ps), ps)
	}
}

// TestBuildConcurrent shares one Mapping between goroutines, as ticketer's
// workers do (run with -race).
func TestBuildConcurrent(t *testing.T) {
	m := shipped(t, shippedMapping, 2)
	meta := platformMeta(t)
	evs := sampleEvents(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(evs); i += 8 {
				if _, err := m.Build(evs[i], meta); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkBuild(b *testing.B) {
	m := shipped(b, shippedMapping, 3)
	meta := platformMeta(b)
	evs := sampleEvents(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := m.Build(evs[i%len(evs)], meta); err != nil {
			b.Fatal(err)
		}
	}
}
