package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"

	"github.com/cowjacket/formjira/internal/capture"
	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/console"
	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/stats"
	"github.com/cowjacket/formjira/internal/stream"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/ticketer"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/webauth"
)

// natsUsers is deploy/nats/nats-server.conf running in-process with the
// environment it asks for: test certificates, each user's password (the
// operator's as a bcrypt hash, as the file allows) and, per user, the
// client settings of a process that logs in as it.
type natsUsers struct {
	ns  *localnats.Server
	log *testsupport.Buffer // the server's log
	env map[string]map[string]string
}

func startNATSFromDeployFile(t *testing.T) *natsUsers {
	t.Helper()
	ca := testsupport.NewCA(t, "nats")
	srv := ca.Server(t, "127.0.0.1")
	t.Setenv("NATS_SERVER_TLS_CERT", srv.CertFile)
	t.Setenv("NATS_SERVER_TLS_KEY", srv.KeyFile)
	t.Setenv("NATS_SERVER_TLS_CA", ca.File)
	u := &natsUsers{log: &testsupport.Buffer{}, env: map[string]map[string]string{}}
	for _, user := range []string{"capture", "ticketer", "operator"} {
		pw := randomPassword(t)
		serverSide := pw
		if user == "operator" {
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			serverSide = string(h)
		}
		t.Setenv("NATS_"+strings.ToUpper(user)+"_PASSWORD", serverSide)
		cert := ca.Client(t, user)
		pwFile := filepath.Join(t.TempDir(), user+"-password")
		if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		u.env[user] = map[string]string{
			"NATS_USER": user, "NATS_PASSWORD_FILE": pwFile,
			"NATS_TLS_CA": ca.File, "NATS_TLS_CERT": cert.CertFile, "NATS_TLS_KEY": cert.KeyFile,
		}
	}
	ns, err := localnats.Start(localnats.Options{ConfigFile: ticketertest.Deploy("nats/nats-server.conf"), Log: u.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	u.ns = ns
	if !strings.HasPrefix(ns.URL(), "tls://") {
		t.Fatalf("deploy/nats/nats-server.conf does not require TLS: %s", ns.URL())
	}
	for _, e := range u.env {
		e["NATS_URL"] = ns.URL()
	}
	return u
}

func randomPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// as is env with user's NATS settings over it.
func (u *natsUsers) as(user string, env map[string]string) map[string]string {
	out := maps.Clone(env)
	maps.Copy(out, u.env[user])
	return out
}

// actor is a connection as one user, as the binaries connect, with what
// the server told it (its permission refusals) in its log.
type actor struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *testsupport.Buffer
}

func (u *natsUsers) connect(t *testing.T, user, inbox string) *actor {
	t.Helper()
	r := config.NewReader(func(k string) string { return u.env[user][k] }, natsconn.Vars)
	c := natsconn.Load(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	a := &actor{user: user, log: &testsupport.Buffer{}}
	nc, js, err := natsconn.JetStream(context.Background(), c, "forbidden-"+user, slog.New(slog.NewTextHandler(a.log, nil)),
		nats.CustomInboxPrefix(inbox))
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	a.nc, a.js = nc, js
	return a
}

// refused: do fails, and the server said it refused this user the
// subject. Attempts run at once (each waits for an answer that must not
// come); wait collects them.
func (a *actor) refused(t *testing.T, what, subject string, do func(context.Context) error) {
	t.Helper()
	attempts.Add(1)
	go func() {
		defer attempts.Done()
		a.try(t, what, subject, do)
	}()
}

var attempts sync.WaitGroup

func (a *actor) try(t *testing.T, what, subject string, do func(context.Context) error) {
	// A refused request gets no answer, only the server's error: wait
	// briefly for the answer that must not come.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := do(ctx); err == nil {
		t.Errorf("%s could %s", a.user, what)
		return
	}
	want := fmt.Sprintf("Permissions Violation for %q", subject)
	want = strings.Replace(want, "for ", "for Publish to ", 1)
	if strings.HasPrefix(subject, "sub:") {
		want = fmt.Sprintf("Permissions Violation for Subscription to %q", strings.TrimPrefix(subject, "sub:"))
	}
	want = strings.ReplaceAll(want, `"`, `\"`) // as the JSON log line quotes it
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(a.log.String(), want) {
		if time.Now().After(deadline) {
			t.Errorf("%s tried to %s: the server did not say %s; it said:\n%s", a.user, what, want, a.log.String())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The issue's test of least privilege: the whole pipeline runs with the
// three users of deploy/nats/nats-server.conf over mutual TLS (capture
// from a private PostgreSQL, ticketer against the Jira sandbox): 200
// samples, 197 tickets, not one permission refused on the way. The
// operator inspects, replays and counts with ticketer's commands and the
// read-only nats CLI commands of the guide. Then each user tries what its
// job does not need, and the server refuses every attempt; FORMS and the
// service's consumer are untouched.
func TestLeastPrivilegeNATSPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: PostgreSQL, nats-server from deploy/nats/nats-server.conf, Jira sandbox")
	}
	begin := time.Now()
	u := startNATSFromDeployFile(t)
	ctx := context.Background()

	pg := capturetest.StartPG(t)
	db := capturetest.NewOn(t, pg, u.ns, capture.Run)
	db.Vars = u.as("capture", db.Vars)
	db.Start()
	sb := jirasandbox.New(ticketertest.Realistic(jirasandbox.Options{Email: ticketertest.Email, APIToken: ticketertest.Token}))
	jira := httptest.NewServer(sb)
	t.Cleanup(jira.Close)
	tenv := u.as("ticketer", map[string]string{
		"JIRA_URL": jira.URL, "JIRA_EMAIL": ticketertest.Email, "JIRA_API_TOKEN": ticketertest.Token,
		"MAPPING_FILE": ticketertest.Deploy("mapping.yaml"), "HTTP_ADDR": "off", "BATCH_WAIT": "20ms",
		"ACK_WAIT": "5s", "BACKOFF": "1s,2s", "JIRA_TIMEOUT": "3s", "RECONCILE_DELAY": "300ms", "LOG_LEVEL": "info",
	})
	logs := &testsupport.Buffer{}
	svcCtx, stopSvc := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ticketer.Run(svcCtx, func(k string) string { return tenv[k] }, io.Discard, logs) }()
	t.Cleanup(func() {
		stopSvc()
		if err := <-done; err != nil {
			t.Errorf("ticketer: %v", err)
		}
		if t.Failed() {
			t.Logf("ticketer log:\n%s\nnats-server log:\n%s", logs.String(), u.log.String())
		}
	})

	conn := db.Conn()
	db.WaitStreaming(conn)
	samples := capturetest.Samples(t)
	if err := capturetest.InsertSamples(ctx, conn, samples, nil); err != nil {
		t.Fatal(err)
	}
	testsupport.WaitFor(t, "197 tickets", 60*time.Second, func() bool { return len(sb.Issues()) >= 197 })
	// Two rows of a department Jira does not know yet: the console
	// replays one, ticketer dlq replay the other.
	for _, i := range []int{1, 2} {
		bad := form.Sample{}
		for k, v := range samples[i] {
			bad[k] = v
		}
		astrology := "Astrology"
		bad["departmentname"] = &astrology
		if _, err := conn.Exec(ctx, form.InsertSQL("public.form_submissions"), bad.Args()...); err != nil {
			t.Fatal(err)
		}
	}
	op := u.connect(t, "operator", natsconn.OperatorInbox)
	testsupport.WaitFor(t, "the bad rows' dead letters", 20*time.Second, func() bool {
		return capturetest.StreamMsgs(ctx, op.js, stream.DLQ) == 2
	})
	if n := len(sb.Issues()); n != 197 {
		t.Errorf("%d tickets, want 197", n)
	}
	if strings.Contains(u.log.String(), "Violation") {
		t.Errorf("the pipeline met refused permissions:\n%s", grepLines(u.log.String(), "Violation"))
	}

	t.Logf("pipeline done after %v", time.Since(begin))
	// capture backfill as the capture user: it reads FORMS's last event
	// (HASH_FIELDS compared) and re-publishes only duplicates.
	bcfg, err := capture.LoadConfig(db.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	res, err := capture.Backfill(ctx, bcfg, time.Time{}, slog.New(slog.DiscardHandler))
	if err != nil || res.Published != 0 || res.Duplicates == 0 {
		t.Errorf("backfill as capture: %+v, %v; want every row a duplicate", res, err)
	}
	operatorCommands(t, u, sb, jira.URL)
	t.Logf("operator's commands done after %v", time.Since(begin))
	ticketerDailySummary(t, u)
	if strings.Contains(u.log.String(), "Violation") {
		t.Errorf("the operator's commands or the daily summary met refused permissions:\n%s", grepLines(u.log.String(), "Violation"))
	}
	forbidden(t, u)
	t.Logf("forbidden attempts done after %v", time.Since(begin))
	wrongUser(t, u, db.Vars)
}

// operatorCommands: as operator, the guide's read-only nats CLI commands
// and ticketer dlq list, show, replay, replay and stats work.
func operatorCommands(t *testing.T, u *natsUsers, sb *jirasandbox.Server, jiraURL string) {
	t.Helper()
	env := u.as("operator", map[string]string{
		"JIRA_URL": jiraURL, "JIRA_EMAIL": ticketertest.Email, "JIRA_API_TOKEN": ticketertest.Token,
		"MAPPING_FILE": ticketertest.Deploy("mapping.yaml"), "JIRA_TIMEOUT": "3s", "RECONCILE_DELAY": "300ms",
	})
	cmd := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
		t.Logf("$ ticketer %s (as operator)\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
		if err != nil {
			t.Fatalf("ticketer %s as operator: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	var entries []deadletters.Entry
	if err := json.Unmarshal([]byte(cmd("dlq", "list", "--json")), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("dlq list --json: %v, %d entries", err, len(entries))
	}
	seq := fmt.Sprint(entries[0].Seq)
	if show := cmd("dlq", "show", seq); !strings.Contains(show, "customfield_10073 (Department)") {
		t.Errorf("dlq show lacks the field")
	}

	// The nats CLI, as the operator (its own inbox prefix, _INBOX).
	natsBin := testsupport.NatsCLI(t)
	blocks := testsupport.DocBlocks(t, "../../docs/operators.md")
	if len(blocks["inspect"]) == 0 {
		t.Fatal("docs/operators.md has no nats-cli-test block inspect")
	}
	e := u.env["operator"]
	pw, err := os.ReadFile(e["NATS_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	var someHash string
	for _, is := range sb.Issues() {
		for _, l := range is.Labels {
			if h, ok := strings.CutPrefix(l, "cowjacket-"); ok {
				someHash = h
			}
		}
	}
	root, _ := filepath.Abs("../..")
	out := testsupport.RunDoc(t, natsBin, root, blocks["inspect"], map[string]string{
		"NATS_URL": e["NATS_URL"], "NATS_USER": "operator", "NATS_PASSWORD": strings.TrimSpace(string(pw)),
		"NATS_CA": e["NATS_TLS_CA"], "NATS_CERT": e["NATS_TLS_CERT"], "NATS_KEY": e["NATS_TLS_KEY"],
		"SEQ": seq, "HASH": someHash,
	})
	for _, want := range []string{"Cowjacket-Reason: unmappable", "Information for Consumer FORMS > ticketer", `"state":"created"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the guide's inspect commands as operator do not show %q", want)
		}
	}

	issue := sb.Issues()[0]
	if out := cmd("trace", issue.Key); !strings.Contains(out, issue.Key) || !strings.Contains(out, "ticket") {
		t.Errorf("trace %s as operator does not show the ticket:\n%s", issue.Key, out)
	}

	if err := sb.AddOption("customfield_10073", "Astrology"); err != nil {
		t.Fatal(err)
	}
	operatorConsole(t, env, entries[0].Seq)
	if out := cmd("dlq", "replay", "--all"); !strings.Contains(out, "1 created") {
		t.Errorf("dlq replay --all as operator: %s", out)
	}
	if n := len(sb.Issues()); n != 199 {
		t.Errorf("%d tickets after the replays, want 199", n)
	}
	if out := cmd("replay", "--from-seq", "1", "--to-seq", "3"); !strings.Contains(out, "3 skipped") {
		t.Errorf("replay as operator: %s", out)
	}
	if out := cmd("stats", "--days", "1"); !strings.Contains(out, "created") {
		t.Errorf("stats as operator: %s", out)
	}
	// check reads FORMS' events as operator (replies under _INBOX_operator).
	if out := cmd("check"); !regexp.MustCompile(`checked against [1-9][0-9]* event\(s\) of stream FORMS`).MatchString(out) {
		t.Errorf("check as operator did not read FORMS' events:\n%s", out)
	}
}

// ticketerDailySummary: the summary the service logs at midnight reads the
// counters and the records' latencies as user ticketer.
func ticketerDailySummary(t *testing.T, u *natsUsers) {
	t.Helper()
	tick := u.connect(t, "ticketer", natsconn.TicketerInbox)
	now := time.Now().UTC()
	// The service flushes its counters every 10 s.
	testsupport.WaitFor(t, "the daily summary as ticketer to count 197 tickets and their latencies", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		days, err := stats.Read(ctx, tick.js, time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC), 1)
		if err != nil {
			t.Fatalf("the daily summary as ticketer: %v", err)
		}
		return days[0].Created >= 197 && days[0].LatencySamples >= 197
	})
}

// operatorConsole: ticketer console, logged in to NATS as operator, shows
// the overview and a trace, replays dead letter seq and records that in
// FORMS_AUDIT.
func operatorConsole(t *testing.T, env map[string]string, seq uint64) {
	t.Helper()
	users := filepath.Join(t.TempDir(), "users")
	line, err := webauth.HashPassword("oper", "oper-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cenv := map[string]string{"CONSOLE_ADDR": "127.0.0.1:0", "CONSOLE_USERS_FILE": users, "CONSOLE_OPERATORS": "oper"}
	maps.Copy(cenv, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := make(chan string, 1), make(chan error, 1)
	logs := &testsupport.Buffer{}
	go func() {
		done <- console.Run(ctx, func(k string) string { return cenv[k] }, logs, func(a string) { addr <- a })
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("console as operator: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatal("console did not start")
	}
	call := func(method, path string) string {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.SetBasicAuth("oper", "oper-password")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Errorf("console as operator: %s %s: %d %s\n%s", method, path, res.StatusCode, b, logs)
		}
		return string(b)
	}
	call("GET", "/api/status")
	call("GET", "/api/trace?q=id%3D1")
	if out := call("POST", fmt.Sprintf("/api/dlq/%d/replay", seq)); !strings.Contains(out, `"created": 1`) {
		t.Errorf("console replay as operator: %s", out)
	}
	if out := call("GET", "/api/audit"); !strings.Contains(out, "dlq.replay") {
		t.Errorf("the console's audit as operator lacks the replay: %s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("console: %v", err)
	}
}

// wrongUser: capture started with the operator's NATS login (which may not
// manage FORMS or publish rows) stops with one line naming the credential,
// instead of retrying for ever.
func wrongUser(t *testing.T, u *natsUsers, captureVars map[string]string) {
	t.Helper()
	env := u.as("operator", captureVars)
	env["HTTP_ADDR"] = "off"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stderr testsupport.Buffer
	err := capture.Run(ctx, func(k string) string { return env[k] }, io.Discard, &stderr)
	t.Logf("capture as operator: %v", err)
	if err == nil || ctx.Err() != nil || !strings.HasPrefix(err.Error(), "NATS_USER/NATS_PASSWORD: the NATS server refuses this user a permission it needs") {
		t.Errorf("capture as operator: %v, want one line naming NATS_USER/NATS_PASSWORD and the refused permission\n%s", err, stderr.String())
	}
}

// forbidden: every user tries what its job does not need; the server
// refuses each, and FORMS and the service's consumer stay as they were.
func forbidden(t *testing.T, u *natsUsers) {
	t.Helper()
	capt := u.connect(t, "capture", natsconn.CaptureInbox)
	tick := u.connect(t, "ticketer", natsconn.TicketerInbox)
	op := u.connect(t, "operator", natsconn.OperatorInbox)
	ctx := context.Background()
	before := formsState(t, op.js)

	row := func(a *actor) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := a.js.Publish(ctx, ticketertest.FormSubject, []byte(`{"schema_version":1}`))
			return err
		}
	}
	deleteForms := func(a *actor) func(context.Context) error {
		return func(ctx context.Context) error { return a.js.DeleteStream(ctx, stream.Forms) }
	}
	purgeForms := func(a *actor) func(context.Context) error {
		return func(ctx context.Context) error {
			st, err := a.js.Stream(ctx, stream.Forms)
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		}
	}
	deleteMsg := func(a *actor) func(context.Context) error {
		return func(ctx context.Context) error {
			st, err := a.js.Stream(ctx, stream.Forms)
			if err != nil {
				return err
			}
			return st.DeleteMsg(ctx, 1)
		}
	}
	shrinkForms := func(a *actor) func(context.Context) error {
		return func(ctx context.Context) error {
			cfg := stream.FormsConfig(stream.Config{})
			cfg.MaxMsgs = 1
			_, err := a.js.UpdateStream(ctx, cfg)
			return err
		}
	}
	const api = "$JS.API."

	// capture: consume, read tickets, delete or purge anything.
	capt.refused(t, "consume FORMS", api+"CONSUMER.CREATE.FORMS.peek", func(ctx context.Context) error {
		_, err := capt.js.CreateConsumer(ctx, stream.Forms, jetstream.ConsumerConfig{Name: "peek"})
		return err
	})
	capt.refused(t, "read the ticket records", api+"STREAM.INFO.KV_FORMS_TICKETS", func(ctx context.Context) error {
		_, err := capt.js.KeyValue(ctx, stream.TicketsBucket)
		return err
	})
	capt.refused(t, "delete FORMS", api+"STREAM.DELETE.FORMS", deleteForms(capt))
	capt.refused(t, "delete a row of FORMS", api+"STREAM.MSG.DELETE.FORMS", deleteMsg(capt))
	capt.refused(t, "listen to ticketer's replies", "sub:_INBOX_ticketer.>", subscribe(capt, "_INBOX_ticketer.>"))

	// ticketer: publish rows, delete, purge or shrink FORMS, drop its consumer.
	tick.refused(t, "publish a row", ticketertest.FormSubject, row(tick))
	tick.refused(t, "delete FORMS", api+"STREAM.DELETE.FORMS", deleteForms(tick))
	tick.refused(t, "purge FORMS", api+"STREAM.PURGE.FORMS", purgeForms(tick))
	tick.refused(t, "shrink FORMS", api+"STREAM.UPDATE.FORMS", shrinkForms(tick))
	tick.refused(t, "delete its consumer", api+"CONSUMER.DELETE.FORMS.ticketer", func(ctx context.Context) error {
		return tick.js.DeleteConsumer(ctx, stream.Forms, stream.TicketerConsumer)
	})
	tick.refused(t, "listen to capture's replies", "sub:_INBOX_capture.>", subscribe(tick, "_INBOX_capture.>"))

	// operator: purge, delete or shrink FORMS, publish rows, take the
	// service's messages, drop its consumer.
	op.refused(t, "purge FORMS", api+"STREAM.PURGE.FORMS", purgeForms(op))
	op.refused(t, "delete FORMS", api+"STREAM.DELETE.FORMS", deleteForms(op))
	op.refused(t, "delete a row of FORMS", api+"STREAM.MSG.DELETE.FORMS", deleteMsg(op))
	op.refused(t, "shrink FORMS", api+"STREAM.UPDATE.FORMS", shrinkForms(op))
	op.refused(t, "publish a row", ticketertest.FormSubject, row(op))
	op.refused(t, "rewrite the service's consumer by the older API", api+"CONSUMER.CREATE.FORMS", func(ctx context.Context) error {
		req := []byte(`{"stream_name":"FORMS","config":{"durable_name":"ticketer","ack_policy":"explicit","max_ack_pending":1}}`)
		_, err := op.nc.RequestWithContext(ctx, api+"CONSUMER.CREATE.FORMS", req)
		return err
	})
	op.refused(t, "shorten the console's audit trail", api+"STREAM.UPDATE.FORMS_AUDIT", func(ctx context.Context) error {
		cfg := stream.AuditConfig(stream.Config{})
		cfg.MaxMsgs = 1
		_, err := op.js.UpdateStream(ctx, cfg)
		return err
	})
	op.refused(t, "listen to the service's replies", "sub:_INBOX_ticketer.>", subscribe(op, "_INBOX_ticketer.>"))
	op.refused(t, "erase the console's audit of a replay", api+"STREAM.MSG.DELETE.FORMS_AUDIT", func(ctx context.Context) error {
		st, err := op.js.Stream(ctx, stream.Audit)
		if err != nil {
			return err
		}
		return st.DeleteMsg(ctx, 1)
	})
	op.refused(t, "delete the service's consumer", api+"CONSUMER.DELETE.FORMS.ticketer", func(ctx context.Context) error {
		return op.js.DeleteConsumer(ctx, stream.Forms, stream.TicketerConsumer)
	})
	op.refused(t, "pull the service's messages", api+"CONSUMER.MSG.NEXT.FORMS.ticketer", func(ctx context.Context) error {
		c, err := op.js.Consumer(ctx, stream.Forms, stream.TicketerConsumer)
		if err != nil {
			return err
		}
		_, err = c.Next(jetstream.FetchMaxWait(time.Second))
		return err
	})

	attempts.Wait()
	if after := formsState(t, op.js); after != before {
		t.Errorf("FORMS changed under the forbidden attempts: %+v, then %+v", before, after)
	}
	if _, err := op.js.Consumer(ctx, stream.Forms, stream.TicketerConsumer); err != nil {
		t.Errorf("the service's consumer: %v", err)
	}
}

type formsSnapshot struct {
	msgs, first, last uint64
	maxMsgs           int64
}

func formsState(t *testing.T, js jetstream.JetStream) formsSnapshot {
	t.Helper()
	st, err := js.Stream(context.Background(), stream.Forms)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return formsSnapshot{info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.Config.MaxMsgs}
}

// subscribe subscribes and waits for the server's answer (a refusal
// arrives as an asynchronous error; no message ever arrives).
func subscribe(a *actor, subject string) func(context.Context) error {
	return func(ctx context.Context) error {
		sub, err := a.nc.SubscribeSync(subject)
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		if err := a.nc.FlushWithContext(ctx); err != nil {
			return err
		}
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(a.log.String(), "Subscription to") {
				return errors.New("subscription refused")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	}
}

func grepLines(s, what string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
