package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/localnats"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/KV_FORMS_CAPTURE.json")

const captureStatusFile = "../../deploy/nats/KV_FORMS_CAPTURE.json"

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns := localnats.StartTB(t)
	nc := ns.ConnectTB(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// deploy/nats/KV_FORMS_CAPTURE.json is the stream behind the bucket as
// capture creates it, for `nats stream add --config` (like the other
// deploy/nats files); regenerate with -update.
func TestCaptureStatusDeployFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	js := connect(t)
	ctx := context.Background()
	if _, err := EnsureCaptureStatus(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "KV_"+CaptureStatusBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Metadata = nil
	want := pruned(t, cfg)
	if *update {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(want); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(captureStatusFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(captureStatusFile)
	if err != nil {
		t.Fatalf("%v (generate with go test ./internal/stream -run TestCaptureStatusDeployFile -update)", err)
	}
	if got := pruned(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs from the bucket capture creates:\n%v\nwant\n%v", captureStatusFile, got, want)
	}
	if cfg.MaxAge != CaptureStatusTTL || cfg.Storage != jetstream.FileStorage || cfg.Replicas != 1 {
		t.Errorf("stream config %+v: want file storage, 1 replica, MaxAge %v", cfg, CaptureStatusTTL)
	}
	// Replicas follow STREAM_REPLICAS (on one server, R3 is refused: the
	// request carries it).
	if c := CaptureStatusConfig(Config{Replicas: 3}); c.Replicas != 3 || c.TTL != CaptureStatusTTL {
		t.Errorf("config for 3 replicas: %+v", c)
	}
}

// pruned is JSON without zero values and server metadata, so a file may
// omit what means "default".
func pruned(t *testing.T, v any) any {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	var prune func(any) any
	prune = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				e = prune(e)
				if z, isMap := e.(map[string]any); strings.HasPrefix(k, "_nats.") || e == nil || e == false || e == 0.0 || e == "" ||
					e == "0001-01-01T00:00:00Z" || isMap && len(z) == 0 {
					delete(x, k)
					continue
				}
				x[k] = e
			}
		case []any:
			for i, e := range x {
				x[i] = prune(e)
			}
		}
		return v
	}
	return prune(out)
}

// ReadCaptureStatus returns every entry, active first, and nothing (no
// error) before any capture created the bucket.
func TestReadCaptureStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	js := connect(t)
	ctx := context.Background()
	if got, err := ReadCaptureStatus(ctx, js); err != nil || len(got) != 0 {
		t.Fatalf("without the bucket: %v, %v", got, err)
	}
	kv, err := EnsureCaptureStatus(ctx, js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []CaptureStatus{
		{Instance: "b.host 2", Role: RoleStandby},
		{Instance: "c-host-3", Role: RoleActive, ConfirmedLSN: "0/16B3748", RowsPublished: 7},
		{Instance: "a-host-1", Role: RoleStandby},
	} {
		b, _ := json.Marshal(s)
		if _, err := kv.Put(ctx, CaptureStatusKey(s.Instance), b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "other.key", []byte("not a status")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, CaptureStatusKey("a-host-1")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCaptureStatus(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Instance != "c-host-3" || got[0].RowsPublished != 7 || got[1].Instance != "b.host 2" {
		t.Errorf("entries %+v, want c-host-3 (active) then b.host 2", got)
	}
	if k := CaptureStatusKey("b.host 2"); k != "status.b_host_2" {
		t.Errorf("key %q", k)
	}
}
