package mapping

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jira"
	"github.com/cowjacket/formjira/internal/ticket"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The shipped mappings are tested as shipped: the repository's deploy files.
const (
	shippedMapping    = "../../deploy/mapping.yaml"
	shippedMappingJSM = "../../deploy/mapping-jsm.yaml"
)

func platformMeta(t testing.TB) *ticket.Meta {
	t.Helper()
	data, err := os.ReadFile("../jirasandbox/fixtures/createmeta-CP-10003.json")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := jira.ParseCreatemeta(data)
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

func jsmMeta(t testing.TB) *ticket.Meta {
	t.Helper()
	data, err := os.ReadFile("../jirasandbox/fixtures/servicedesk-4-requesttype-41-fields.json")
	if err != nil {
		t.Fatal(err)
	}
	meta, err := jira.ParseRequestTypeFields(data)
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

// shipped loads a deploy mapping; version 2 or 3 rewrites api_version so the
// v2 golden exercises the same mapping the project ships.
func shipped(t testing.TB, path string, version int) *Mapping {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if version == 2 {
		data = bytes.Replace(data, []byte("\napi_version: 3\n"), []byte("\napi_version: 2\n"), 1)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if version != 0 && m.APIVersion() != version {
		t.Fatalf("%s: api_version %d, want %d", path, m.APIVersion(), version)
	}
	return m
}

func mustParse(t testing.TB, yml string) *Mapping {
	t.Helper()
	m, err := Parse([]byte(yml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

// loadSamples parses the embedded samples once: the fuzz target builds an
// event per input.
var loadSamples = sync.OnceValues(form.Samples)

func samples(t testing.TB) []form.Sample {
	t.Helper()
	ss, err := loadSamples()
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 200 {
		t.Fatalf("%d samples, want 200", len(ss))
	}
	return ss
}

func event(s form.Sample) *formsv1.FormSubmission {
	return form.NewEvent(s.Columns(), nil, nil, nil, time.Date(2025, 10, 24, 12, 0, 0, 0, time.UTC))
}

func sampleEvents(t testing.TB) []*formsv1.FormSubmission {
	t.Helper()
	var evs []*formsv1.FormSubmission
	for _, s := range samples(t) {
		evs = append(evs, event(s))
	}
	return evs
}

// saraWith is sample line 1 (Sara Curtis) with some columns replaced; a nil
// value is NULL.
func saraWith(t testing.TB, changes map[string]*string) *formsv1.FormSubmission {
	t.Helper()
	s := maps.Clone(samples(t)[0])
	maps.Copy(s, changes)
	return event(s)
}

func ptr(s string) *string { return &s }

// golden compares v as indented JSON with testdata/name.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // goldens are read by people: & not \u0026
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s", path, got)
	}
}

// roundTrip is v as the JSON Jira receives, decoded generically.
func roundTrip(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
