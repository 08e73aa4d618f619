package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/audit"
	"github.com/cowjacket/formjira/internal/index"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/telemetry"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/trace"
	"github.com/cowjacket/formjira/internal/webauth"
)

// Run is `ticketer console`: the configuration from getenv, logs to
// stderr, until ctx ends. ready, if set, is told the address it listens
// on.
func Run(ctx context.Context, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	tc, cc, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, tc.LogLevel)
	// Operators replay from here: the Jira settings are needed.
	if err := tc.RequireJira(); err != nil {
		return err
	}
	auth, err := webauth.New(ctx, cc.Auth, log)
	if err != nil {
		return err
	}
	nc, js, err := tc.Connect(ctx, log, ticketer.CommandNATS...)
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := stream.EnsureAudit(ctx, js, tc.Streams)
	if err != nil {
		return err
	}
	kv, err := waitIndex(ctx, js, log)
	if err != nil {
		return err
	}
	s := &Server{
		JS: js, Auth: auth, Log: log, JiraURL: tc.JiraURL,
		Tracer: &trace.Tracer{JS: js, Index: &index.Index{KV: kv}, JiraURL: tc.JiraURL},
		Audit:  &audit.Log{Pub: js, Stream: st},
		NewReplayer: func(ctx context.Context) (Replayer, error) {
			return tc.NewReplayer(ctx, js, log)
		},
	}
	h, err := s.Handler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cc.Addr)
	if err != nil {
		return fmt.Errorf("CONSOLE_ADDR: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	password, oidc := auth.Sources()
	log.Info("console listening", "addr", ln.Addr().String(), "password_users", password, "oidc", oidc)
	if w := plainHTTPWarning(ln.Addr(), cc.Auth.URL); w != "" {
		log.Warn(w, "addr", ln.Addr().String())
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("console stopped")
	return nil
}

// waitIndex looks FORMS_INDEX up, waiting while it is missing: the ticketer
// service owns and creates it (the console, run as NATS user operator, may
// not), and may start after the console.
func waitIndex(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (jetstream.KeyValue, error) {
	for said := false; ; said = true {
		kv, err := stream.LookupIndex(ctx, js)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return kv, err
		}
		if !said {
			log.Warn("console: waiting for the ticketer service to create its index", "bucket", stream.IndexBucket)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// plainHTTPWarning is what to say when the console's plain HTTP is open
// beyond this machine and no https CONSOLE_URL says a proxy fronts it:
// browsers drop its Secure session cookie over http (sign-in loops back to
// the login page), and Basic-auth passwords cross the network in clear.
func plainHTTPWarning(addr net.Addr, consoleURL string) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() || strings.HasPrefix(consoleURL, "https://") {
		return ""
	}
	return "the console serves plain HTTP beyond this machine: browsers drop its Secure session cookie over http (sign-in loops), " +
		"and passwords cross the network in clear; put it behind an HTTPS proxy and set CONSOLE_URL to its https:// URL"
}
