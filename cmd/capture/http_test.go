package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// HTTP_ADDR serves Prometheus metrics with the right counts, /healthz, and
// /readyz: 200 for the streaming capture and for a healthy standby (each
// naming its role; capture_active 1 and 0), 503 saying why once NATS is
// gone. `capture status` shows both captures' roles; `capture healthcheck`
// probes the same /healthz.
func TestHTTPEndpointsAndHealthcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := newEnv(t)
	active := testsupport.FreeAddr(t)
	e.Vars["HTTP_ADDR"] = active
	e.Start()
	c := e.Conn()
	e.WaitStreaming(c)

	const n = 10 // the first ten samples are distinct
	if err := insertSamples(context.Background(), c, samples(t)[:n], nil); err != nil {
		t.Fatal(err)
	}
	js := e.JS()
	waitMsgs(t, js, stream.Forms, n, 20*time.Second)
	var page string
	testsupport.WaitFor(t, "published counter to reach the rows", 5*time.Second, func() bool {
		_, page = get(t, active, "/metrics")
		return testsupport.Metric(page, `capture_rows_published_total{result="stored"}`) == n
	})
	for name, want := range map[string]float64{
		"capture_rows_captured_total":     n,
		"capture_publish_seconds_count":   n,
		"capture_in_flight_rows":          0,
		"capture_reconnects_total":        0,
		"capture_publish_retries_total":   0,
		"capture_slot_retained_wal_bytes": -2, // present
		"capture_replication_lag_bytes":   -2,
		"capture_confirmed_lsn":           -2,
		"process_resident_memory_bytes":   -2,
		"go_goroutines":                   -2,
		// at 0 from the start, so that Prometheus' increase() sees the first
		`capture_rows_dead_lettered_total{reason="undecodable"}`: 0,
		`capture_rows_dead_lettered_total{reason="too_large"}`:   0,
	} {
		got := testsupport.Metric(page, name)
		switch {
		case want == -2 && got < 0:
			t.Errorf("/metrics lacks %s", name)
		case want != -2 && got != want:
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	testsupport.WaitFor(t, "capture_confirmed_lsn to be set", 5*time.Second, func() bool {
		_, page = get(t, active, "/metrics")
		return testsupport.Metric(page, "capture_confirmed_lsn") > 0
	})

	if code, body := get(t, active, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, active, "/readyz"); code != http.StatusOK || !strings.Contains(body, "active") {
		t.Errorf("/readyz of the streaming capture: %d %q, want 200 naming active", code, body)
	}
	if v := testsupport.Metric(page, "capture_active"); v != 1 {
		t.Errorf("capture_active of the streaming capture = %v, want 1", v)
	}

	// A second capture on the same slot is a standby: alive, and ready to
	// take over (so a rollout can complete with it).
	standby := testsupport.FreeAddr(t)
	e.Vars["HTTP_ADDR"] = standby
	second := e.Start()
	testsupport.WaitFor(t, "second capture to report standby", 10*time.Second, func() bool {
		return strings.Contains(second.Logs.String(), "standby")
	})
	if code, body := get(t, standby, "/readyz"); code != http.StatusOK || !strings.Contains(body, "standby") {
		t.Errorf("/readyz of the standby: %d %q, want 200 naming standby", code, body)
	}
	if code, body := get(t, standby, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz of the standby: %d %q", code, body)
	}
	if _, page := get(t, standby, "/metrics"); testsupport.Metric(page, "capture_active") != 0 {
		t.Errorf("capture_active of the standby = %v, want 0", testsupport.Metric(page, "capture_active"))
	}
	var out string
	testsupport.WaitFor(t, "capture status to show both captures", 10*time.Second, func() bool {
		out, _ = run(e, "status")
		return strings.Contains(out, "active, streaming") && strings.Contains(out, "standby, standby: another capture holds the replication slot")
	})
	if strings.Index(out, "active, streaming") > strings.Index(out, "standby, standby") {
		t.Errorf("capture status lists the standby before the active capture:\n%s", out)
	}

	// `capture healthcheck` with each capture's HTTP_ADDR, written the way
	// a container sets it (":port") and literally.
	for _, addr := range []string{active, standby, ":" + active[strings.LastIndex(active, ":")+1:]} {
		e.Vars["HTTP_ADDR"] = addr
		out, err := run(e, "healthcheck")
		if err != nil || !strings.Contains(out, "healthy") {
			t.Errorf("healthcheck HTTP_ADDR=%s: %v, %q", addr, err, out)
		}
	}
	e.Vars["HTTP_ADDR"] = testsupport.FreeAddr(t) // nobody listens
	begin := time.Now()
	if _, err := run(e, "healthcheck"); err == nil {
		t.Error("healthcheck of a port nobody listens on succeeded")
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("healthcheck took %v, want at most its 2 s timeout", d)
	}

	// Without NATS neither capture is ready, and both say why.
	e.NATS.Shutdown()
	for _, addr := range []string{active, standby} {
		testsupport.WaitFor(t, "/readyz to answer 503 without NATS", 10*time.Second, func() bool {
			code, body := get(t, addr, "/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "NATS disconnected")
		})
	}
}

// healthcheck needs only HTTP_ADDR (a probe must not depend on, or print,
// the database settings), honours the 2 s timeout, and maps the listen
// address to a URL it can reach.
func TestHealthcheck(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	okAddr := serve(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\n"))
	})})
	slowAddr := serve(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})})
	failAddr := serve(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})})

	tests := []struct {
		addr    string
		wantErr string
		maxTime time.Duration
	}{
		{okAddr, "", time.Second},
		{":" + port(okAddr), "", time.Second},
		{"0.0.0.0:" + port(okAddr), "", time.Second},
		{failAddr, "500", time.Second},
		{slowAddr, "deadline exceeded", 3 * time.Second},
		{"off", "HTTP_ADDR", time.Second},
		{"127.0.0.1:0", "HTTP_ADDR", time.Second},
		{"nonsense", "HTTP_ADDR", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			e := &env{T: t, Vars: map[string]string{"HTTP_ADDR": tt.addr}} // no DATABASE_URL: not needed
			begin := time.Now()
			out, err := run(e, "healthcheck")
			took := time.Since(begin)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.wantErr == "" && !strings.Contains(out, "healthy"):
				t.Errorf("printed %q", out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one naming %q", err, tt.wantErr)
			}
			if took > tt.maxTime {
				t.Errorf("took %v, want under %v", took, tt.maxTime)
			}
		})
	}
	e := &env{T: t, Vars: map[string]string{"HTTP_ADDR": okAddr}}
	if _, err := run(e, "healthcheck", "extra"); err == nil {
		t.Error("healthcheck accepted an argument")
	}
}

func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	})
	return ln.Addr().String()
}

func port(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
