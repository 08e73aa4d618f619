package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
)

// Everything capture prints — --help, its debug log while it works, and
// every failure the test can provoke (a bad URL, a refused database
// password, an untrusted certificate, NATS refusing the password, the
// token or the URL's credentials, a NATS certificate of another CA, the
// commands meeting a refusal) — shows none of the secrets it was given.
func TestNothingCapturePrintsShowsASecret(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const natsPW = "nats-capture-s3cret-pw"
	ca := testsupport.NewCA(t, "nats")
	client := ca.Client(t, "capture")
	ns := localnats.StartAuthTB(t, ca, map[string]string{"capture": natsPW})
	tokenServer := startTokenServer(t, "the-servers-token-s3cret")
	e := capturetest.NewOn(t, pg, ns, service)
	secrets := map[string]string{
		"DATABASE_URL's password":       capturetest.RolePassword,
		"a wrong database password":     "wrong-db-s3cret-pw",
		"a bad URL's password":          "bad-url-s3cret",
		"NATS_PASSWORD":                 natsPW,
		"a wrong NATS_PASSWORD":         "wrong-nats-s3cret",
		"NATS_TOKEN":                    "nats-token-s3cret",
		"the server's token":            "the-servers-token-s3cret",
		"NATS_URL's password":           "url-nats-s3cret",
		"ALERT_SMTP_PASSWORD":           "smtp-s3cret-pw",
		"ALERT_WEBHOOK_URL's path":      "T0000/B0000/webhook-s3cret",
		"the NATS client key (PEM)":     pemBody(client.KeyPEM),
		"the Postgres client key (PEM)": pemBody(testsupport.ReadFile(t, roleKeyFile(t, e))),
	}
	base := e.With(t, map[string]string{
		"NATS_USER": "capture", "NATS_PASSWORD": natsPW,
		"NATS_TLS_CA": ca.File, "NATS_TLS_CERT": client.CertFile, "NATS_TLS_KEY": client.KeyFile,
		"LOG_LEVEL":       "debug",
		"ALERT_SMTP_ADDR": "127.0.0.1:1", "ALERT_SMTP_USERNAME": "alerts", "ALERT_SMTP_PASSWORD": secrets["ALERT_SMTP_PASSWORD"],
		"ALERT_EMAIL_FROM": "capture@cowjacket.example", "ALERT_EMAIL_TO": "ops@cowjacket.example",
		"ALERT_WEBHOOK_URL": "https://hooks.slack.invalid/services/" + secrets["ALERT_WEBHOOK_URL's path"],
	})
	dsn := base.Vars["DATABASE_URL"]
	untrusting := trustingAStranger(t, dsn)
	stranger := testsupport.NewCA(t, "stranger")

	var all strings.Builder
	out, err := runCapture(t, base, nil, "--help")
	if err != nil || !strings.Contains(out, "NATS_PASSWORD") {
		t.Fatalf("--help: %v", err)
	}
	all.WriteString(out)
	all.WriteString(captureWorking(t, base))

	for _, f := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"bad DATABASE_URL", map[string]string{"DATABASE_URL": "postgres://capture:bad-url-s3cret@127.0.0.1:notaport/db"}, nil},
		{"wrong database password", map[string]string{"DATABASE_URL": strings.Replace(dsn, capturetest.RolePassword, "wrong-db-s3cret-pw", 1)}, nil},
		{"untrusted database certificate", map[string]string{"DATABASE_URL": untrusting}, nil},
		{"NATS refuses the password", map[string]string{"NATS_PASSWORD": "wrong-nats-s3cret"}, nil},
		{"NATS refuses the token", map[string]string{"NATS_URL": tokenServer, "NATS_USER": "", "NATS_PASSWORD": "", "NATS_TOKEN": "nats-token-s3cret",
			"NATS_TLS_CA": "", "NATS_TLS_CERT": "", "NATS_TLS_KEY": ""}, nil},
		{"NATS refuses the URL's credentials", map[string]string{"NATS_URL": strings.Replace(ns.URL(), "tls://", "tls://capture:url-nats-s3cret@", 1),
			"NATS_USER": "", "NATS_PASSWORD": ""}, nil},
		{"NATS certificate of another CA", map[string]string{"NATS_TLS_CA": stranger.File}, nil},
		{"status refused by NATS", map[string]string{"NATS_PASSWORD": "wrong-nats-s3cret"}, []string{"status"}},
		{"backfill refused by NATS", map[string]string{"NATS_PASSWORD": "wrong-nats-s3cret"}, []string{"backfill"}},
	} {
		out, err := runCapture(t, base, f.vars, f.args...)
		if err == nil {
			t.Errorf("%s: capture %v succeeded", f.name, f.args)
		}
		all.WriteString(out)
	}
	if leaks := testsupport.Leaks(all.String(), secrets); len(leaks) > 0 {
		t.Errorf("capture printed %v:\n%s", leaks, all.String())
	}
}

// runCapture runs the binary with e's variables and vars over them, and
// returns everything it printed (stdout and stderr).
func runCapture(t *testing.T, e *capturetest.Env, vars map[string]string, args ...string) (string, error) {
	t.Helper()
	sub := e.With(t, vars)
	var out testsupport.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := program.Run(ctx, args, sub.Getenv, &out, &out)
	return out.String(), err
}

// captureWorking runs the service at debug level until a row is in FORMS,
// and returns what it printed.
func captureWorking(t *testing.T, e *capturetest.Env) string {
	t.Helper()
	var out testsupport.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- program.Run(ctx, nil, e.Getenv, &out, &out) }()
	c := e.Conn()
	e.WaitStreaming(c)
	if err := capturetest.InsertSamples(context.Background(), c, capturetest.Samples(t)[:3], nil); err != nil {
		t.Fatal(err)
	}
	r := config.NewReader(e.Getenv, natsconn.Vars)
	nc, js, err := natsconn.JetStream(context.Background(), natsconn.Load(r), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testsupport.WaitFor(t, "the rows in FORMS", 20*time.Second, func() bool {
		return capturetest.StreamMsgs(context.Background(), js, stream.Forms) == 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("capture: %v", err)
	}
	if !strings.Contains(out.String(), `"level":"DEBUG"`) && !strings.Contains(out.String(), "streaming") {
		t.Errorf("no log to look at:\n%s", out.String())
	}
	return out.String()
}

// startTokenServer is a plain nats-server that wants token.
func startTokenServer(t *testing.T, token string) string {
	t.Helper()
	conf := testsupport.WriteTemp(t, "token.conf", fmt.Sprintf("authorization { token: %q }\n", token))
	ns, err := localnats.Start(localnats.Options{ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return "nats://127.0.0.1:" + strconv.Itoa(ns.Port())
}

// pemBody is a line from the middle of a PEM block: what a leak of the
// key would contain.
func pemBody(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)/2]
}

func roleKeyFile(t *testing.T, e *capturetest.Env) string {
	t.Helper()
	u, err := url.Parse(e.Vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("sslkey")
}
