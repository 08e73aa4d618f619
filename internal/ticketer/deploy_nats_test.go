package ticketer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/ticketer"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/*.json from the services' configurations")

const deployNATS = "../../deploy/nats"

// defaultConfig is the configuration with every default.
func defaultConfig(t *testing.T) *ticketer.Config {
	t.Helper()
	c, err := ticketer.LoadConfig(func(k string) string {
		return map[string]string{"JIRA_URL": "https://jira.example", "JIRA_PAT": "x"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// normalise makes JSON comparable: decoded into generic values, with
// zero values (false, 0, "", zero time, null, {}, []) and the server's own metadata
// (_nats.*) dropped, so that a file may omit what means "default".
func normalise(t *testing.T, v any) any {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return prune(out)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e = prune(e)
			if strings.HasPrefix(k, "_nats.") || isZero(e) {
				delete(x, k)
				continue
			}
			x[k] = e
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = prune(e)
		}
		return x
	}
	return v
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == "" || x == "0001-01-01T00:00:00Z" // a zero time: e.g. pause_until, "not paused"
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// deployFiles are the files of deploy/nats and what they must equal.
type deployFile struct {
	name string
	want func(t *testing.T) any // the services' configuration
}

func deployFiles() []deployFile {
	sc := stream.Config{}
	return []deployFile{
		{"FORMS.json", func(*testing.T) any { return stream.FormsConfig(sc) }},
		{"FORMS_DLQ.json", func(*testing.T) any { return stream.DLQConfig(sc) }},
		{"FORMS_STATS.json", func(*testing.T) any { return stream.StatsConfig(sc) }},
		{"KV_FORMS_TICKETS.json", kvStreamConfig(stream.TicketsConfig(sc))},
		{"KV_FORMS_CUSTOMERS.json", kvStreamConfig(stream.CustomersConfig(sc))},
		{"KV_FORMS_JIRA.json", kvStreamConfig(stream.JiraConfig(sc))},
		{"KV_FORMS_INDEX.json", kvStreamConfig(stream.IndexConfig(sc))},
		{"FORMS_AUDIT.json", func(*testing.T) any { return stream.AuditConfig(sc) }},
		{"ticketer-consumer.json", func(t *testing.T) any { return defaultConfig(t).ConsumerConfig() }},
	}
}

// kvStreamConfig is the stream behind a KV bucket as the ticketer creates
// it (nats.go derives it from the bucket's config), so `nats stream add
// --config` can create the bucket.
func kvStreamConfig(kvc jetstream.KeyValueConfig) func(t *testing.T) any {
	return func(t *testing.T) any {
		t.Helper()
		ns := localnats.StartTB(t)
		nc, err := nats.Connect(ns.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx := context.Background()
		if _, err := js.CreateKeyValue(ctx, kvc); err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, "KV_"+kvc.Bucket)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		cfg.Metadata = nil
		return cfg
	}
}

// deploy/nats holds what the services create, as files for the nats CLI.
func TestDeployNATSFilesEqualTheServicesConfigs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server for the KV bucket")
	}
	for _, f := range deployFiles() {
		path := filepath.Join(deployNATS, f.name)
		want := f.want(t)
		if *update {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // operators read "forms.submitted.>"
			enc.SetIndent("", "  ")
			if err := enc.Encode(normalise(t, want)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (generate with go test ./internal/ticketer -run TestDeployNATSFiles -update)", err)
		}
		if g, w := normalise(t, got), normalise(t, want); !reflect.DeepEqual(g, w) {
			gb, _ := json.MarshalIndent(g, "", "  ")
			wb, _ := json.MarshalIndent(w, "", "  ")
			t.Errorf("%s differs from the service's configuration (regenerate with -update):\n%s\nwant:\n%s", path, gb, wb)
		}
	}
}
