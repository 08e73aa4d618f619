package capture

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/pgcdc"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// PostgreSQL and NATS are readied at once: a NATS server that refuses the
// credentials ends start-up with its one line while PostgreSQL is still
// unreachable (capture used to retry PostgreSQL for ever before asking
// NATS).
func TestNATSRefusalEndsStartUpWhilePostgresIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	vars := refusingNATS(t)
	vars["DATABASE_URL"] = "postgres://capture@" + testsupport.FreeAddr(t) + "/forms?sslmode=disable"
	vars["HTTP_ADDR"] = "off"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := &testsupport.Buffer{}
	err := Run(ctx, func(k string) string { return vars[k] }, io.Discard, logs)
	if ctx.Err() != nil {
		t.Fatalf("start-up still waiting after 30 s (PostgreSQL first?); logs:\n%s", logs)
	}
	wantRefusal(t, err)
	if !strings.Contains(logs.String(), "PostgreSQL unreachable") {
		t.Errorf("PostgreSQL was not being retried meanwhile; logs:\n%s", logs)
	}
}

// A NATS refusal does not cut PostgreSQL's preparation short: the slot is
// made, so what is committed until NATS is fixed is kept for capture.
func TestNATSRefusalStillMakesTheSlot(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	slot := fmt.Sprintf("refused_%d", os.Getpid())
	vars := refusingNATS(t)
	vars["SLOT_NAME"] = slot
	e := newEnv(t).With(t, vars)
	// PostgreSQL answers later than NATS refuses.
	u, err := url.Parse(e.Vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	u.Host = slowProxy(t, u.Host)
	e.Vars["DATABASE_URL"] = u.String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wantRefusal(t, Run(ctx, e.Getenv, io.Discard, io.Discard))
	c := e.Conn()
	t.Cleanup(func() { _, _ = c.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", slot) })
	s, err := pgcdc.ReadSlot(ctx, c, slot)
	if err != nil || !s.Exists {
		t.Fatalf("slot %s after the refusal: %+v (%v), want it made", slot, s, err)
	}
}

// refusingNATS is the NATS variables of a server that refuses capture's
// password.
func refusingNATS(t *testing.T) map[string]string {
	ca := testsupport.NewCA(t, "nats")
	client := ca.Client(t, "capture")
	ns := localnats.StartAuthTB(t, ca, map[string]string{"capture": "right-password"})
	return map[string]string{
		"NATS_URL": ns.URL(), "NATS_USER": "capture", "NATS_PASSWORD": "wrong-password",
		"NATS_TLS_CA": ca.File, "NATS_TLS_CERT": client.CertFile, "NATS_TLS_KEY": client.KeyFile,
	}
}

func wantRefusal(t *testing.T, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "NATS_USER/NATS_PASSWORD: the NATS server refused the credentials") {
		t.Fatalf("error %v, want NATS's refusal", err)
	}
}

// slowProxy forwards connections to addr, each a second late: a PostgreSQL
// slower to prepare than NATS is to refuse.
func slowProxy(t *testing.T, addr string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(time.Second)
				s, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().String()
}
