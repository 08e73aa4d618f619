package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
)

// Everything ticketer prints — --help, its debug log while it creates
// tickets, and every failure the test can provoke (Jira refusing the
// token or the PAT, Jira's certificate untrusted, NATS refusing the
// password, a bad URL, the commands meeting a refusal) — shows none of
// the secrets it was given, not even as the Authorization header's base64.
func TestNothingTicketerPrintsShowsASecret(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const (
		email  = "bot@cowjacket.example"
		token  = "jira-api-t0ken-s3cret"
		pat    = "jira-pat-s3cret-value"
		natsPW = "nats-ticketer-s3cret"
	)
	ca := testsupport.NewCA(t, "nats")
	client := ca.Client(t, "ticketer")
	ns := localnats.StartAuthTB(t, ca, map[string]string{"ticketer": natsPW})
	sb := jirasandbox.New(jirasandbox.Options{Email: email, APIToken: token, PAT: pat})
	jira := httptest.NewServer(sb)
	t.Cleanup(jira.Close)
	jiraCA := testsupport.NewCA(t, "jira")
	jiraTLS := httptest.NewUnstartedServer(sb)
	jiraTLS.TLS = &tls.Config{Certificates: []tls.Certificate{jiraCA.Server(t, "127.0.0.1").TLS}}
	jiraTLS.StartTLS()
	t.Cleanup(jiraTLS.Close)

	secrets := map[string]string{
		"JIRA_API_TOKEN":                  token,
		"JIRA_EMAIL:JIRA_API_TOKEN":       email + ":" + token,
		"a wrong JIRA_API_TOKEN":          "wrong-t0ken-s3cret",
		"JIRA_PAT":                        pat,
		"a wrong JIRA_PAT":                "wrong-pat-s3cret",
		"NATS_PASSWORD":                   natsPW,
		"a wrong NATS_PASSWORD":           "wrong-nats-s3cret",
		"a bad NATS_URL's password":       "bad-url-s3cret",
		"ALERT_SMTP_PASSWORD":             "smtp-s3cret-pw",
		"ALERT_WEBHOOK_URL's secret path": "T0000/B0000/webhook-s3cret",
		"the NATS client key (PEM)":       pemBody(client.KeyPEM),
	}
	env := map[string]string{
		"NATS_URL": ns.URL(), "NATS_USER": "ticketer", "NATS_PASSWORD_FILE": testsupport.WriteTemp(t, "pw", natsPW+"\n"),
		"NATS_TLS_CA": ca.File, "NATS_TLS_CERT": client.CertFile, "NATS_TLS_KEY": client.KeyFile,
		"JIRA_URL": jira.URL, "JIRA_EMAIL": email, "JIRA_API_TOKEN_FILE": testsupport.WriteTemp(t, "token", token),
		"MAPPING_FILE": ticketertest.Deploy("mapping.yaml"), "HTTP_ADDR": "off", "LOG_LEVEL": "debug",
		"BATCH_WAIT": "20ms", "JIRA_TIMEOUT": "3s", "RECONCILE_DELAY": "300ms",
		"ALERT_SMTP_ADDR": "127.0.0.1:1", "ALERT_SMTP_USERNAME": "alerts", "ALERT_SMTP_PASSWORD": "smtp-s3cret-pw",
		"ALERT_EMAIL_FROM": "ticketer@cowjacket.example", "ALERT_EMAIL_TO": "ops@cowjacket.example",
		"ALERT_WEBHOOK_URL": "https://hooks.slack.invalid/services/T0000/B0000/webhook-s3cret",
	}
	with := func(vars map[string]string) map[string]string {
		out := maps.Clone(env)
		maps.Copy(out, vars)
		return out
	}

	var all strings.Builder
	out, err := ticketerRun(with(map[string]string{"JIRA_API_TOKEN_FILE": "", "JIRA_API_TOKEN": token, "JIRA_PAT": pat}), "--help")
	if err != nil || !strings.Contains(out, "JIRA_CA_FILE") {
		t.Fatalf("--help: %v", err)
	}
	all.WriteString(out)
	all.WriteString(ticketerWorking(t, env, sb))

	for _, f := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"Jira refuses the token", map[string]string{"JIRA_API_TOKEN_FILE": "", "JIRA_API_TOKEN": "wrong-t0ken-s3cret"}, nil},
		{"Jira refuses the PAT", map[string]string{"JIRA_EMAIL": "", "JIRA_API_TOKEN_FILE": "", "JIRA_PAT": "wrong-pat-s3cret",
			"MAPPING_FILE": withoutRequester(t)}, nil},
		{"Jira's certificate untrusted", map[string]string{"JIRA_URL": jiraTLS.URL}, nil},
		{"NATS refuses the password", map[string]string{"NATS_PASSWORD_FILE": "", "NATS_PASSWORD": "wrong-nats-s3cret"}, nil},
		{"bad NATS_URL", map[string]string{"NATS_URL": "nats://t:bad-url-s3cret@[::1", "NATS_USER": "", "NATS_PASSWORD_FILE": ""}, nil},
		{"dlq list refused by NATS", map[string]string{"NATS_PASSWORD_FILE": "", "NATS_PASSWORD": "wrong-nats-s3cret"}, []string{"dlq", "list"}},
		{"check refused by Jira", map[string]string{"JIRA_API_TOKEN_FILE": "", "JIRA_API_TOKEN": "wrong-t0ken-s3cret"}, []string{"check"}},
	} {
		out, err := ticketerRun(with(f.vars), f.args...)
		if err == nil {
			t.Errorf("%s: ticketer %v succeeded", f.name, f.args)
		}
		all.WriteString(out)
	}
	if leaks := testsupport.Leaks(all.String(), secrets); len(leaks) > 0 {
		t.Errorf("ticketer printed %v:\n%s", leaks, all.String())
	}
}

// ticketerRun runs the binary with env and returns everything it printed.
func ticketerRun(env map[string]string, args ...string) (string, error) {
	var out testsupport.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, func(k string) string { return env[k] }, &out, &out)
	return out.String(), err
}

// ticketerWorking runs the service at debug level until three events are
// tickets, and returns what it printed.
func ticketerWorking(t *testing.T, env map[string]string, sb *jirasandbox.Server) string {
	t.Helper()
	r := config.NewReader(func(k string) string { return env[k] }, natsconn.Vars)
	nc, js, err := natsconn.JetStream(context.Background(), natsconn.Load(r), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := stream.EnsureAll(context.Background(), js, stream.Config{}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range ticketertest.SampleEvents(t)[:3] {
		m, err := stream.NewMsg(ticketertest.FormSubject, ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	var out testsupport.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, &out) }()
	testsupport.WaitFor(t, "3 tickets", 20*time.Second, func() bool { return len(sb.Issues()) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ticketer: %v", err)
	}
	if !strings.Contains(out.String(), `"level":"DEBUG"`) {
		t.Errorf("no debug log to look at:\n%s", out.String())
	}
	return out.String()
}

// pemBody is a line from the middle of a PEM block: what a leak of the
// key would contain.
func pemBody(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)/2]
}

// withoutRequester is the shipped mapping without its requester, as a
// Data Center (JIRA_PAT) site needs it.
func withoutRequester(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(ticketertest.Deploy("mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "requester:") && !strings.HasPrefix(l, "reporter:") && !strings.HasPrefix(l, "unknown_requester:") {
			keep = append(keep, l)
		}
	}
	return testsupport.WriteTemp(t, "mapping.yaml", strings.Join(keep, "\n"))
}
