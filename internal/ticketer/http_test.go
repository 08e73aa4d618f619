package ticketer_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// TestHTTPEndpoints: /metrics counts the tickets created, /healthz is 200,
// /readyz is 200 while consuming and 503 while Jira refuses the
// credentials (401), and 200 again once it accepts them.
func TestHTTPEndpoints(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	addr := testsupport.FreeAddr(t)
	h.Env["HTTP_ADDR"] = addr
	evs := ticketertest.SampleEvents(t)[:7]
	h.Publish(evs...)
	h.Start()
	h.WaitFor("7 tickets", 30*time.Second, func() bool { return len(h.SB.Issues()) >= 7 })
	h.WaitFor("ticketer_tickets_created_total 7", 10*time.Second, func() bool {
		return testsupport.MetricAt(addr, "ticketer_tickets_created_total") == 7
	})
	if code, body := testsupport.Get(addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := testsupport.Get(addr, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz while consuming: %d %s", code, body)
	}

	h.SB.SetAuthFailure(401)
	h.Publish(ticketertest.SampleEvents(t)[10:12]...)
	h.WaitFor("/readyz 503 while Jira answers 401", 15*time.Second, func() bool {
		code, _ := testsupport.Get(addr, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if code, body := testsupport.Get(addr, "/readyz"); !strings.Contains(body, "credentials") {
		t.Errorf("/readyz during the auth failure says %d %q, want it to name the credentials", code, body)
	}
	if code, _ := testsupport.Get(addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during the auth failure: %d, want 200 (alive, just not ready)", code)
	}
	h.SB.SetAuthFailure(0)
	h.WaitFor("/readyz 200 after the fix", 20*time.Second, func() bool {
		code, _ := testsupport.Get(addr, "/readyz")
		return code == http.StatusOK
	})
	h.WaitFor("9 tickets", 20*time.Second, func() bool { return testsupport.MetricAt(addr, "ticketer_tickets_created_total") == 9 })
}

// TestWaitsForNATSAtStart: started before NATS, the service neither exits
// nor is ready; once the server is up it sets everything up and consumes.
func TestWaitsForNATSAtStart(t *testing.T) {
	h := newHarness(t, jirasandbox.Options{})
	natsAddr := testsupport.FreeAddr(t)
	_, port, _ := net.SplitHostPort(natsAddr)
	p, _ := strconv.Atoi(port)
	addr := testsupport.FreeAddr(t)
	h.Env["HTTP_ADDR"] = addr
	h.Env["NATS_URL"] = "nats://" + natsAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ticketer.Run(ctx, h.Getenv, io.Discard, h.Logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("ticketer did not stop")
		}
	})
	h.WaitFor("/healthz", 10*time.Second, func() bool { code, _ := testsupport.Get(addr, "/healthz"); return code == http.StatusOK })
	time.Sleep(700 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("ticketer exited while NATS was down: %v", err)
	default:
	}
	if code, body := testsupport.Get(addr, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without NATS: %d %s, want 503", code, body)
	}

	ns, err := localnats.Start(localnats.Options{Port: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	h.WaitFor("/readyz 200 once NATS is up", 20*time.Second, func() bool { code, _ := testsupport.Get(addr, "/readyz"); return code == http.StatusOK })

	// It consumes: an event published to the new server becomes a ticket.
	nc := ns.ConnectTB(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.NewMsg(ticketertest.FormSubject, ticketertest.SampleEvents(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	h.WaitFor("a ticket", 20*time.Second, func() bool { return len(h.SB.Issues()) == 1 })
	if n := strings.Count(h.Logs.String(), "ticketer starting"); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}
