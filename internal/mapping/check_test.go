package mapping

import (
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/ticket"
)

// TestCheckShipped: the shipped mappings are clean against the fixtures and
// all 200 samples.
func TestCheckShipped(t *testing.T) {
	evs := sampleEvents(t)
	for _, tt := range []struct {
		name string
		m    *Mapping
		meta *ticket.Meta
	}{
		{"v3", shipped(t, shippedMapping, 3), platformMeta(t)},
		{"v2", shipped(t, shippedMapping, 2), platformMeta(t)},
		{"jsm", shipped(t, shippedMappingJSM, 0), jsmMeta(t)},
	} {
		table, problems, warnings := tt.m.Check(tt.meta, evs)
		if len(problems)+len(warnings) > 0 {
			t.Errorf("%s: problems:\n%s\nwarnings:\n%s", tt.name, strings.Join(problems, "\n"), strings.Join(warnings, "\n"))
		}
		for _, want := range []string{"COLUMN", "departmentname", "customfield_10073", "Department", "select", "handsetsandheadsets", `checkboxes ("; ")`, "multicheckboxes", "Comments", "customfield_10082"} {
			if !strings.Contains(table, want) {
				t.Errorf("%s: table lacks %q:\n%s", tt.name, want, table)
			}
		}
		if tt.name == "jsm" && !strings.Contains(table, "added after create") {
			t.Errorf("jsm table does not say labels are added after create:\n%s", table)
		}
	}
}

func TestCheckFindsProblems(t *testing.T) {
	m := mustParse(t, `
api_version: 3
project: CP
issue_type: "10003"
summary: '{{col "newusername"}}'
fields:
  - {column: newusername, field: customfield_10070, type: text}
  - {column: departmentname, field: customfield_10073, type: select}
  - {column: emailaddress, field: customfield_10075, type: text}
  - {column: costcenter, field: customfield_10076, type: text}
  - {column: timeframe, field: customfield_10079, type: radio}
  - {column: dateneededby, field: customfield_10077, type: select}
  - {column: Comments, field: customfield_10082, type: date}
  - {column: job, field: customfield_19999, type: text}
`)
	evs := sampleEvents(t)[:3]
	evs = append(evs, saraWith(t, map[string]*string{"departmentname": ptr("Fiance")}))
	table, problems, _ := m.Check(platformMeta(t), evs)
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		// unknown field id
		`fields[7]: column "job" → customfield_19999: unknown field id`,
		// required by Jira, not mapped
		"customfield_10080 (Date needed by): required by Jira but not mapped",
		// type mismatch, mapping vs Jira
		`fields[6]: column "Comments" → customfield_10082 (Comments): mapped as date, but Jira's field is textarea (map it as textarea)`,
		// type mismatch, column vs mapping: a date column mapped to a select
		`fields[5]: column "dateneededby" holds date values but is mapped as select`,
		// a sample value Jira would refuse, with the samples that have it
		`sample 4: column "departmentname" → customfield_10073 (Department): "Fiance" is not an allowed value`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if !strings.Contains(table, "customfield_19999") || !strings.Contains(table, "not in Jira") {
		t.Errorf("table:\n%s", table)
	}
	// Mapping-level problems are not repeated per sample.
	if strings.Contains(all, "sample 1, 2, 3, 4: customfield_10080") {
		t.Errorf("per-sample repetition of a mapping problem:\n%s", all)
	}
}

func TestCheckLabelsAndIssueType(t *testing.T) {
	meta := platformMeta(t)
	delete(meta.Fields, "labels")
	m := shipped(t, shippedMapping, 3)
	_, problems, _ := m.Check(meta, nil)
	if len(problems) != 1 || !strings.Contains(problems[0], "hash label") {
		t.Errorf("problems %v, want the missing labels field", problems)
	}

	m2 := mustParse(t, strings.Replace(validYAML, "issue_type: 10003", "issue_type: 10004", 1))
	_, problems, _ = m2.Check(platformMeta(t), nil)
	if !strings.Contains(strings.Join(problems, "\n"), "issue_type: 10004 is not an issue type of this screen") {
		t.Errorf("problems %v", problems)
	}

	if _, problems, _ := m.Check(nil, nil); len(problems) != 1 {
		t.Errorf("nil meta: %v", problems)
	}
}

// A platform mapping into a service project without a request type works,
// but its issues are no customer requests: check warns, in one line each.
func TestCheckWarnsWithoutRequestType(t *testing.T) {
	m := mustParse(t, `
api_version: 3
project: CP
issue_type: "10003"
summary: '{{col "newusername"}}'
fields:
  - {column: newusername, field: customfield_10070, type: text}
  - {column: departmentname, field: customfield_10073, type: select}
  - {column: emailaddress, field: customfield_10075, type: text}
  - {column: costcenter, field: customfield_10076, type: text}
  - {column: timeframe, field: customfield_10079, type: radio}
  - {column: dateneededby, field: customfield_10080, type: date}
`)
	_, problems, warnings := m.Check(platformMeta(t), nil)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	all := strings.Join(warnings, "\n")
	for _, want := range []string{"request_type: not set", "customer portal", "notifications", "SLAs", "reporter: not set"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	for _, w := range warnings {
		if strings.Contains(w, "\n") {
			t.Errorf("warning is not one line: %q", w)
		}
	}
	// Without a Customer Request Type field (not a service project), a
	// request_type is a problem, and no warning is due.
	meta := platformMeta(t)
	delete(meta.Fields, meta.RequestTypeField())
	m2 := mustParse(t, `
api_version: 3
project: CP
issue_type: "10003"
request_type: "41"
summary: '{{col "newusername"}}'
fields:
  - {column: newusername, field: customfield_10070, type: text}
`)
	if _, problems, warnings := m2.Check(meta, nil); !strings.Contains(strings.Join(problems, "\n"), "no Customer Request Type field") || len(warnings) > 0 {
		t.Errorf("problems %v, warnings %v", problems, warnings)
	}
}

// TestCheckJSMBotMayNotRaiseForCustomers: a JSM mapping with a requester
// needs the bot to raise requests on behalf of customers; a request type
// that says it may not (canRaiseOnBehalfOf false) is a problem check names,
// not a refusal found at the first create.
func TestCheckJSMBotMayNotRaiseForCustomers(t *testing.T) {
	meta := jsmMeta(t)
	meta.CanRaiseOnBehalfOf = false
	_, problems, _ := shipped(t, shippedMappingJSM, 0).Check(meta, sampleEvents(t)[:3])
	if len(problems) != 1 || !strings.Contains(problems[0], "canRaiseOnBehalfOf is false") {
		t.Errorf("problems %q, want the bot's missing permission", problems)
	}
}
