package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/testsupport"
)

// TestDemo runs the one-command demo as a user would: the samples become
// 197 tickets on the sandbox, Ctrl-C stops it, and running it again resumes
// (no sample loaded twice, the tickets still there).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres, NATS, the sandbox, capture and ticketer")
	}
	// As root Postgres runs as user postgres, which must reach the folder:
	// t.TempDir() is private to root.
	dir, err := os.MkdirTemp("", "demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	jira := "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
	consoleAddr := "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
	args := []string{
		"--dir", dir,
		"--pg-port", strconv.Itoa(testsupport.FreePort(t)),
		"--nats-port", strconv.Itoa(testsupport.FreePort(t)),
		"--jira-addr", jira,
		"--capture-http", "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)),
		"--ticketer-http", "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)),
		"--console-addr", consoleAddr,
		"--mapping", "../../deploy/mapping.yaml",
	}
	tickets := func() int {
		resp, err := http.Get("http://" + jira + "/sandbox/issues")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var issues []json.RawMessage
		if json.NewDecoder(resp.Body).Decode(&issues) != nil {
			return -1
		}
		return len(issues)
	}
	runDemo := func(wantTickets int, until func(out string) bool) string {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		var out testsupport.Buffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, args, &out, &out) }()
		// A guard, not a pace: alone a run takes about 25 s, under make
		// test's four packages at once up to 90 s.
		deadline := time.Now().Add(3 * time.Minute)
		for tickets() != wantTickets || !until(out.String()) {
			if time.Now().After(deadline) {
				n := tickets() // before the sandbox stops with the demo
				cancel()
				<-done
				t.Fatalf("after 3 min: %d tickets (want %d); output:\n%s", n, wantTickets, out.String())
			}
			select {
			case err := <-done:
				t.Fatalf("demo exited early: %v\n%s", err, out.String())
			case <-time.After(200 * time.Millisecond):
			}
		}
		cancel() // Ctrl-C
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("demo stopped with %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("demo did not stop within 15s of Ctrl-C")
		}
		return out.String()
	}

	// The console is up with the operator login printed: it signs in.
	signsIn := func(out string) bool {
		m := regexp.MustCompile(`operator console: +(http://\S+)/ +\(user operator, password (\S+);`).FindStringSubmatch(out)
		if m == nil {
			return false
		}
		c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.PostForm(m[1]+"/login", url.Values{"user": {"operator"}, "password": {m[2]}})
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusSeeOther && len(res.Cookies()) == 1
	}
	first := runDemo(197, func(out string) bool { return strings.Contains(out, "the pipeline is up") && signsIn(out) })
	if !strings.Contains(first, "inserted 200 sample submissions") {
		t.Errorf("first run did not load the samples:\n%s", first)
	}
	// The printed operator commands carry what they need (the sandbox's
	// Jira login, not only NATS_URL).
	if !regexp.MustCompile(`NATS_URL=\S+ JIRA_URL=http://\S+ JIRA_EMAIL=\S+ JIRA_API_TOKEN=\S+ go run ./cmd/ticketer dlq list`).MatchString(first) {
		t.Errorf("no runnable dlq command printed:\n%s", first)
	}
	second := runDemo(197, func(out string) bool { return strings.Contains(out, "197 tickets from earlier runs") })
	if strings.Contains(second, "inserted 200") {
		t.Errorf("resume loaded the samples again:\n%s", second)
	}
}

// TestDemoArguments: --help is no failure, and a word that is not a flag
// (make demo ARGS=fresh) is refused instead of ignored.
func TestDemoArguments(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"--help"}, &out, &out); err != nil || !strings.Contains(out.String(), "-fresh") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
	if err := run(context.Background(), []string{"fresh"}, &out, &out); err == nil || !strings.Contains(err.Error(), `unexpected arguments ["fresh"]`) {
		t.Errorf("a stray word: %v", err)
	}
}
