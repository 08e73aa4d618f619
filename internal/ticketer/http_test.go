package ticketer

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
)

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get is the status and body of GET http://addr/path; 0 when unreachable.
func get(addr, path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	r, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// metric is the value of an unlabelled series (or one with labels, given
// in Prometheus text form, e.g. `x{class="permanent"}`) on /metrics; -1
// when absent.
func metric(addr, series string) float64 {
	_, body := get(addr, "/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestHTTPEndpoints: /metrics counts the tickets created, /healthz is 200,
// /readyz is 200 while consuming and 503 while Jira refuses the
// credentials (401), and 200 again once it accepts them.
func TestHTTPEndpoints(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	addr := freeAddr(t)
	h.env["HTTP_ADDR"] = addr
	evs := sampleEvents(t)[:7]
	h.publish(evs...)
	h.start()
	h.waitFor("7 tickets", 30*time.Second, func() bool { return len(h.sb.Issues()) >= 7 })
	h.waitFor("ticketer_tickets_created_total 7", 10*time.Second, func() bool {
		return metric(addr, "ticketer_tickets_created_total") == 7
	})
	if code, body := get(addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(addr, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz while consuming: %d %s", code, body)
	}

	h.sb.SetAuthFailure(401)
	h.publish(sampleEvents(t)[10:12]...)
	h.waitFor("/readyz 503 while Jira answers 401", 15*time.Second, func() bool {
		code, _ := get(addr, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, body := get(addr, "/readyz"); !strings.Contains(body, "credentials") {
		t.Errorf("/readyz during the auth failure says %d %q, want it to name the credentials", code, body)
	}
	if code, _ := get(addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the auth failure: %d, want 200 (alive, just not ready)", code)
	}
	h.sb.SetAuthFailure(0)
	h.waitFor("/readyz 200 after the fix", 20*time.Second, func() bool {
		code, _ := get(addr, "/readyz")
		return code == http.StatusOK
	})
	h.waitFor("9 tickets", 20*time.Second, func() bool { return metric(addr, "ticketer_tickets_created_total") == 9 })
}

// TestWaitsForNATSAtStart: started before NATS, the service neither exits
// nor is ready; once the server is up it sets everything up and consumes.
func TestWaitsForNATSAtStart(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	natsAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(natsAddr)
	p, _ := strconv.Atoi(port)
	addr := freeAddr(t)
	h.env["HTTP_ADDR"] = addr
	h.env["NATS_URL"] = "nats://" + natsAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, nil, h.getenv, io.Discard, h.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("ticketer did not stop")
		}
	})
	h.waitFor("/healthz", 10*time.Second, func() bool { code, _ := get(addr, "/healthz"); return code == http.StatusOK })
	time.Sleep(700 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("ticketer exited while NATS was down: %v", err)
	default:
	}
	if code, body := get(addr, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without NATS: %d %s, want 503", code, body)
	}

	ns, err := localnats.Start(localnats.Options{Port: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	h.waitFor("/readyz 200 once NATS is up", 20*time.Second, func() bool { code, _ := get(addr, "/readyz"); return code == http.StatusOK })

	// It consumes: an event published to the new server becomes a ticket.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.NewMsg(formSubject, sampleEvents(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a ticket", 20*time.Second, func() bool { return len(h.sb.Issues()) == 1 })
	if n := strings.Count(h.logs.String(), "ticketer starting"); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}
