package mapping

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/form"
)

func TestShippedMapping(t *testing.T) {
	m, err := Load(shippedMapping)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode() != ModePlatform || m.APIVersion() != 3 || m.Project() != "CP" || m.IssueType() != "10003" {
		t.Errorf("mode %s v%d project %s issue type %s", m.Mode(), m.APIVersion(), m.Project(), m.IssueType())
	}
	if d, r := m.ServiceDesk(); d != "4" || r != "" || m.Target().JSM() {
		t.Errorf("platform service desk %q/%q (the desk new requesters join), JSM target %v", d, r, m.Target().JSM())
	}
	// Every form column reaches Jira.
	var mapped []string
	for _, f := range m.fields {
		mapped = append(mapped, f.Column)
	}
	for _, c := range form.FormColumns {
		if !slices.Contains(mapped, c.Name) {
			t.Errorf("form column %q is not mapped", c.Name)
		}
	}

	j, err := Load(shippedMappingJSM)
	if err != nil {
		t.Fatal(err)
	}
	if d, r := j.ServiceDesk(); j.Mode() != ModeJSM || d != "4" || r != "41" || j.requester != (requesterSpec{"emailaddress", "newusername"}) {
		t.Errorf("jsm mode %s desk %s type %s on behalf %+v", j.Mode(), d, r, j.requester)
	}
	p, err := Load(shippedMapping)
	if err != nil {
		t.Fatal(err)
	}
	if p.requestType != "41" || !p.reporter || p.requester.email != "emailaddress" || p.serviceDeskID != "4" {
		t.Errorf("platform: request type %q, reporter %v, requester %+v, desk %q", p.requestType, p.reporter, p.requester, p.serviceDeskID)
	}
}

const validYAML = `mode: platform
api_version: 2
project: CP
issue_type: 10003
summary: 'x {{col "newusername"}}'
fields:
  - {column: newusername, field: customfield_10070, type: text}
`

func TestParseValid(t *testing.T) {
	m := mustParse(t, validYAML)
	if m.IssueType() != "10003" { // unquoted number read as the id text
		t.Errorf("issue type %q", m.IssueType())
	}
	if m.fields[0].Escape || m.fields[0].Required { // one-line text: plain by default
		t.Errorf("defaults %+v", m.fields[0])
	}
}

// TestParseErrors: each mistake is named by its line and key, on one line.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yml string
		want      []string
	}{
		{"empty", "", []string{"mapping is empty"}},
		{"unknown top-level key", validYAML + "sumary: x\n", []string{"line 8: unknown key \"sumary\""}},
		{"bad mode", strings.Replace(validYAML, "mode: platform", "mode: cloud", 1), []string{"line 1: mode:", `"cloud" is not a mode`}},
		{"missing api_version", strings.Replace(validYAML, "api_version: 2\n", "", 1), []string{"api_version: missing"}},
		{"api_version 4", strings.Replace(validYAML, "api_version: 2", "api_version: 4", 1), []string{"line 2: api_version:", `"4" is not supported`}},
		{"issue type name", strings.Replace(validYAML, "issue_type: 10003", "issue_type: Service Request", 1), []string{"line 4: issue_type:", "not an issue type id"}},
		{"jsm without ids", strings.Replace(validYAML, "mode: platform", "mode: jsm", 1), []string{"service_desk_id:", "request_type_id:"}},
		{"template syntax", strings.Replace(validYAML, `x {{col "newusername"}}`, `x {{col "newusername"`, 1), []string{"line 5: summary: template:"}},
		{"unknown type", strings.Replace(validYAML, "type: text", "type: selct", 1), []string{"line 7: fields[0] (column \"newusername\"): type: \"selct\" is unknown"}},
		{"misspelt entry key", strings.Replace(validYAML, "type: text}", "type: text, requird: true}", 1), []string{"line 7", `unknown key "requird"`}},
		{"separator on text", strings.Replace(validYAML, "type: text}", `type: text, separator: ";"}`, 1), []string{"separator: only for"}},
		{"field name not id", strings.Replace(validYAML, "customfield_10070", "New user name", 1), []string{"line 7", "is not a Jira field id"}},
		{"summary as a field", strings.Replace(validYAML, "customfield_10070", "summary", 1), []string{"summary is set by the summary key"}},
		{"duplicate field", validYAML + "  - {column: samplename, field: customfield_10070, type: text}\n", []string{"line 8: fields[1]", "already mapped by fields[0]"}},
		{"label with space", validYAML + "labels: [web form]\n", []string{"line 8: labels:", "without spaces"}},
		{"bad request type", validYAML + "request_type: Phone equipment\n", []string{"line 8: request_type:", "neither a request type id"}},
		{"reporter without requester", validYAML + "reporter: requester\nservice_desk_id: \"4\"\n", []string{"reporter: requester needs the requester key"}},
		{"reporter without desk", validYAML + "requester: {email: emailaddress}\nreporter: requester\n", []string{"service_desk_id: needed with reporter"}},
		{"reporter other than requester", validYAML + "reporter: bob\n", []string{`reporter: "bob"`}},
		{"requester without email", validYAML + "requester: {name: newusername}\n", []string{"requester: email:"}},
		{"unknown requester policy", validYAML + "requester: {email: emailaddress}\nunknown_requester: ignore\n", []string{`unknown_requester: "ignore"`}},
		{"raise_on_behalf_of in platform", validYAML + "raise_on_behalf_of: emailaddress\n", []string{"raise_on_behalf_of: only used in mode jsm"}},
		{"several at once", strings.Replace(strings.Replace(validYAML, "mode: platform", "mode: x", 1), "type: text", "type: y", 1), []string{"mode:", "type:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml))
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, []byte("mode: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("error %v, want it to start with the path", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("loaded a missing file")
	}
}
