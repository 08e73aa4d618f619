package jira

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/ticket"
)

func TestParseCreatemeta(t *testing.T) {
	meta := platformMeta(t)
	if len(meta.Fields) != 22 {
		t.Errorf("%d fields, want 22", len(meta.Fields))
	}
	dept := meta.Fields["customfield_10073"]
	if dept.Name != "Department" || !dept.Required || dept.Type != "option" || !strings.HasSuffix(dept.Custom, ":select") || len(dept.Allowed) != 10 {
		t.Errorf("department %+v", dept)
	}
	if dept.Allowed[0] != (ticket.Option{ID: "10200", Value: "Finance"}) {
		t.Errorf("first option %+v", dept.Allowed[0])
	}
	if h := meta.Fields["customfield_10078"]; h.Type != "array" || h.Items != "option" || len(h.Allowed) != 7 {
		t.Errorf("handsets %+v", h)
	}
	if r := meta.Fields["reporter"]; !r.HasDefault {
		t.Errorf("reporter %+v, want a default", r)
	}
	if it := meta.Fields["issuetype"]; !reflect.DeepEqual(it.Allowed, []ticket.Option{{ID: "10003", Value: "Service Request"}}) {
		t.Errorf("issuetype allowed %+v", it.Allowed)
	}

	m, err := ParseCreatemeta([]byte(`{"values":[{"fieldId":"customfield_1","name":"X","schema":{"type":"option"},
		"allowedValues":[{"id":"1","value":"on"},{"id":"2","value":"off","disabled":true}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Fields["customfield_1"].Allowed; !reflect.DeepEqual(got, []ticket.Option{{ID: "1", Value: "on"}}) {
		t.Errorf("disabled option kept: %+v", got)
	}
	for _, bad := range []string{`{`, `{"issueTypes":[]}`, `{"values":[{"name":"no id"}]}`} {
		if _, err := ParseCreatemeta([]byte(bad)); err == nil {
			t.Errorf("ParseCreatemeta(%s) accepted", bad)
		}
	}
}

func TestParseRequestTypeFields(t *testing.T) {
	meta := jsmMeta(t)
	if len(meta.Fields) != 16 {
		t.Errorf("%d fields, want 16", len(meta.Fields))
	}
	tf := meta.Fields["customfield_10079"]
	if tf.Name != "Timeframe" || !tf.Required || tf.Type != "option" || tf.Allowed[1] != (ticket.Option{ID: "10501", Value: "Temporary use (three months or less)"}) {
		t.Errorf("timeframe %+v", tf)
	}
	if _, ok := meta.Fields["labels"]; ok {
		t.Error("request type 41 has no labels field")
	}
	if !meta.CanRaiseOnBehalfOf {
		t.Error("canRaiseOnBehalfOf: the fixture says true")
	}
	if m, err := ParseRequestTypeFields([]byte(`{"requestTypeFields":[],"canRaiseOnBehalfOf":false}`)); err != nil || m.CanRaiseOnBehalfOf {
		t.Errorf("canRaiseOnBehalfOf false read as %+v, %v", m, err)
	}
	for _, bad := range []string{`[]`, `{"values":[]}`} {
		if _, err := ParseRequestTypeFields([]byte(bad)); err == nil {
			t.Errorf("ParseRequestTypeFields(%s) accepted", bad)
		}
	}
}

// The sandbox's fixtures are the shapes Jira Cloud answers for project CP.
func platformMeta(t *testing.T) *ticket.Meta {
	t.Helper()
	return parseFixture(t, "createmeta-CP-10003.json", ParseCreatemeta)
}

func jsmMeta(t *testing.T) *ticket.Meta {
	t.Helper()
	return parseFixture(t, "servicedesk-4-requesttype-41-fields.json", ParseRequestTypeFields)
}

func parseFixture(t *testing.T, name string, parse func([]byte) (*ticket.Meta, error)) *ticket.Meta {
	t.Helper()
	data, err := os.ReadFile("../jirasandbox/fixtures/" + name)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return meta
}
