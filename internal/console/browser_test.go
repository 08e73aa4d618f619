package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cowjacket/formjira/internal/console"
	"github.com/cowjacket/formjira/internal/deadletters"
	"github.com/cowjacket/formjira/internal/form"
	"github.com/cowjacket/formjira/internal/jirasandbox"
	"github.com/cowjacket/formjira/internal/ticketer/ticketertest"
	"github.com/cowjacket/formjira/internal/webauth"
	formsv1 "github.com/cowjacket/formjira/proto/cowjacket/forms/v1"
)

// pipeline is the ticketer service with its console, over the test's
// nats-server and Jira sandbox: Sara Curtis (row 1) ticketed; Ahmed Byrne
// (row 2) and Rory Haddad (row 3) dead-lettered for a department Jira does
// not offer.
type pipeline struct {
	*ticketertest.Harness
	base string // the console
	key  string // Sara's ticket
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	h := ticketertest.New(t, jirasandbox.Options{})
	samples, err := form.Samples()
	if err != nil {
		t.Fatal(err)
	}
	astrology := func(i int) []*formsv1.Column {
		return form.WithValue(samples[i].Columns(), "departmentname", form.Text("Astrology"))
	}
	h.Publish(ticketertest.RowEvent(samples[0].Columns(), 1), ticketertest.RowEvent(astrology(1), 2), ticketertest.RowEvent(astrology(2), 3))
	h.Start()
	h.WaitFor("Sara's ticket and two dead letters", 20*time.Second, func() bool { return len(h.SB.Issues()) == 1 && len(h.DLQ()) == 2 })
	p := &pipeline{Harness: h, key: h.SB.Issues()[0].Key}

	users := filepath.Join(t.TempDir(), "users")
	var lines []string
	for _, u := range []string{"oper:oper-password", "view:view-password"} {
		name, pass, _ := strings.Cut(u, ":")
		l, err := webauth.HashPassword(name, pass)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := os.WriteFile(users, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CONSOLE_ADDR": "127.0.0.1:0", "CONSOLE_USERS_FILE": users, "CONSOLE_OPERATORS": "oper"}
	for k, v := range h.Env {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- console.Run(ctx, func(k string) string { return env[k] }, h.Logs, func(a string) { addr <- a })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("console did not stop")
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case err := <-done:
		t.Fatalf("console: %v\n%s", err, h.Logs)
	case <-time.After(20 * time.Second):
		t.Fatal("console did not start")
	}
	// The tailer indexes FORMS within a second or so.
	p.WaitFor("Sara in the index", 15*time.Second, func() bool {
		st, body := p.api("view:view-password", "GET", "/api/trace?q=id%3D1")
		return st == 200 && strings.Contains(body, `"outcome": "ticketed"`)
	})
	return p
}

// api calls the console's API as curl -u user:password would.
func (p *pipeline) api(userPass, method, path string) (int, string) {
	req, _ := http.NewRequest(method, p.base+path, nil)
	if userPass != "" {
		u, pw, _ := strings.Cut(userPass, ":")
		req.SetBasicAuth(u, pw)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// chromium is Debian's, as scripts/ensure-deps.sh installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("no chromium: run scripts/ensure-deps.sh (make test does)")
	return ""
}

// browser is a fresh headless Chromium (its own profile folder), started.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs steps, a minute at most.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// shot saves a screenshot of the page under the test's output folder.
func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		path := filepath.Join(t.ArtifactDir(), name+".png")
		t.Logf("screenshot %s", path)
		return os.WriteFile(path, buf, 0o644)
	})
}

func signIn(base, user, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("health")),
	)
}

func signOut() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("user")))
}

// The issue's browser test: an operator finds why Ahmed Byrne has no
// ticket, fixes the cause in Jira (the sandbox), replays and sees the
// ticket; a viewer sees no replay control and gets 403 from the API; Sara
// Curtis is traced to her ticket; every replay is in the audit trail.
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives Chromium against the console, the service and the sandbox")
	}
	p := startPipeline(t)
	ctx := browser(t)
	var entries []deadletters.Entry
	_, body := p.api("view:view-password", "GET", "/api/dlq")
	if err := json.Unmarshal([]byte(body), &entries); err != nil || len(entries) != 2 {
		t.Fatalf("GET /api/dlq: %v %s", err, body)
	}
	ahmed, rory := entries[0], entries[1]
	if !strings.Contains(ahmed.Name, "Ahmed") {
		ahmed, rory = rory, ahmed
	}
	if ahmed.Seq == 0 || !strings.Contains(ahmed.Name, "Ahmed") || rory.Seq == 0 {
		t.Fatalf("dead letters %+v", entries)
	}

	// A viewer: sees the dead letters, no replay control, 403 from the API.
	do(t, ctx, "viewer signs in", signIn(p.base, "view", "view-password"),
		chromedp.Navigate(p.base+"/dlq"), chromedp.WaitVisible(chromedp.ID("dlq-table")), shot(t, "dlq-viewer"))
	text := get(t, ctx, chromedp.Text(chromedp.ID("dlq-table")))
	controls := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("button.replay-one, #replay-all, #replay-selected, input[name=seq]").length`))
	status := get(t, ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch("/api/dlq/%d/replay", {method: "POST", headers: {"X-CSRF-Token": document.querySelector("input[name=csrf]").value}}).then(r => r.status)`, ahmed.Seq), chromedp.EvalAwaitPromise))
	do(t, ctx, "viewer signs out", signOut())
	if !strings.Contains(text, "Ahmed Byrne") || !strings.Contains(text, "customfield_10073 (Department)") {
		t.Errorf("the viewer's dead letters lack Ahmed and the field: %s", text)
	}
	if controls != 0 {
		t.Errorf("the viewer sees %d replay controls", controls)
	}
	if status != http.StatusForbidden {
		t.Errorf("the viewer's replay from the browser: %d, want 403", status)
	}
	if st, _ := p.api("view:view-password", "POST", fmt.Sprintf("/api/dlq/%d/replay", ahmed.Seq)); st != http.StatusForbidden {
		t.Errorf("the viewer's replay with Basic auth: %d, want 403", st)
	}
	if st, _ := p.api("oper:wrong", "GET", "/api/dlq"); st != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", st)
	}

	// The operator: the overview updates itself; the dead letter names the
	// field Jira does not offer; after the option is added, replay → ticket.
	do(t, ctx, "operator signs in", signIn(p.base, "oper", "oper-password"),
		chromedp.WaitVisible(chromedp.CSS("main[data-updated]")), // refreshed in place
		shot(t, "overview"),
		chromedp.Navigate(p.base+"/dlq"), chromedp.WaitVisible(chromedp.ID(fmt.Sprintf("replay-%d", ahmed.Seq))), shot(t, "dlq-operator"),
		chromedp.Navigate(fmt.Sprintf("%s/dlq/%d", p.base, ahmed.Seq)), chromedp.WaitVisible(chromedp.ID("event")), shot(t, "dlq-entry"))
	story := get(t, ctx, chromedp.Text(chromedp.CSS("main")))
	for _, want := range []string{"Ahmed Byrne", "customfield_10073 (Department)", "Astrology", "none recorded"} {
		if !strings.Contains(story, want) {
			t.Errorf("the dead letter's story lacks %q", want)
		}
	}
	if err := p.SB.AddOption("customfield_10073", "Astrology"); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "operator replays", chromedp.Navigate(p.base+"/dlq"), chromedp.Click(chromedp.ID(fmt.Sprintf("replay-%d", ahmed.Seq))),
		chromedp.WaitVisible(chromedp.ID("replay-summary")), shot(t, "replayed"))
	outcome := get(t, ctx, chromedp.Text(chromedp.CSS("main")))
	issues := p.SB.IssueByLabel("cowjacket-" + ahmed.Hash)
	if len(issues) != 1 || !strings.Contains(outcome, "1 created") || !strings.Contains(outcome, issues[0].Key) {
		t.Fatalf("replay outcome %q; tickets for Ahmed %v\n%s", outcome, issues, p.Logs)
	}
	do(t, ctx, "audit", chromedp.Navigate(p.base+"/audit"), chromedp.WaitVisible(chromedp.ID("audit-table")), shot(t, "audit"))
	audit := get(t, ctx, chromedp.Text(chromedp.ID("audit-table")))
	if !strings.Contains(audit, "oper") || !strings.Contains(audit, "dlq.replay") || !strings.Contains(audit, fmt.Sprintf("FORMS_DLQ %d", ahmed.Seq)) || !strings.Contains(audit, "1 created") {
		t.Errorf("audit trail: %s", audit)
	}

	// Scripts: curl -u oper:… -X POST …/api/dlq/SEQ/replay.
	st, body := p.api("oper:oper-password", "POST", fmt.Sprintf("/api/dlq/%d/replay", rory.Seq))
	var rep console.Report
	if json.Unmarshal([]byte(body), &rep); st != http.StatusOK || rep.Created != 1 || len(rep.Outcomes) != 1 || rep.Outcomes[0].Key == "" || rep.AuditSeq == 0 {
		t.Errorf("API replay: %d %s", st, body)
	}
	if st, body := p.api("oper:oper-password", "GET", "/api/audit"); st != 200 || strings.Count(body, `"action": "dlq.replay"`) != 2 || !strings.Contains(body, `"via": "basic"`) {
		t.Errorf("GET /api/audit: %d %s", st, body)
	}

	// Trace Sara Curtis to her ticket, from the search box.
	do(t, ctx, "trace", chromedp.Navigate(p.base+"/trace"), chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "Sara Curtis"), chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.ID("ticket-link")), shot(t, "trace"))
	href := get(t, ctx, chromedp.AttributeValue(chromedp.ID("ticket-link"), "href")).Value
	timeline := get(t, ctx, chromedp.Text(chromedp.CSS("ol.timeline")))
	if href != p.URL+"/browse/"+p.key {
		t.Errorf("ticket link %q, want %s", href, p.URL+"/browse/"+p.key)
	}
	for _, want := range []string{"committed", "stored in FORMS", "ticket created", p.key} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline lacks %q: %s", want, timeline)
		}
	}
}

// No authentication source: the console refuses to start, with one line
// naming the variable.
func TestConsoleRefusesToStartWithoutAnAuthenticationSource(t *testing.T) {
	env := map[string]string{"JIRA_URL": "http://127.0.0.1:1", "JIRA_PAT": "x", "CONSOLE_ADDR": "127.0.0.1:0"}
	err := console.Run(context.Background(), func(k string) string { return env[k] }, io.Discard, func(string) { t.Error("it listened") })
	if err == nil || !strings.HasPrefix(err.Error(), "CONSOLE_USERS_FILE: no authentication source") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err %v", err)
	}
}
