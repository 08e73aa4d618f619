package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"jira-sandbox", "-addr", "127.0.0.1:0", "-search-delay", "1s"},
			env(map[string]string{"SANDBOX_EMAIL": "bot@example.com", "SANDBOX_TOKEN": "s3cret"}), outW, io.Discard)
		outW.Close()
	}()

	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL printed: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	fields := strings.Fields(line)
	if len(fields) < 5 || !strings.HasPrefix(fields[4], "http://127.0.0.1:") {
		t.Fatalf("printed %q", line)
	}
	url := fields[4]

	for _, tc := range []struct {
		user, pass string
		want       int
	}{{"bot@example.com", "s3cret", 200}, {"bot@example.com", "wrong", 401}} {
		req, _ := http.NewRequest(http.MethodGet, url+"/rest/api/2/myself", nil)
		req.SetBasicAuth(tc.user, tc.pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("credentials from the environment: %s/%s got %d, want %d", tc.user, tc.pass, res.StatusCode, tc.want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
}

func TestHelpHidesSecrets(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"jira-sandbox", "-help"},
		env(map[string]string{"SANDBOX_TOKEN": "s3cret-token"}), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("-help: %v", err)
	}
	if !strings.Contains(stderr.String(), "-search-delay") || strings.Contains(stderr.String(), "s3cret-token") {
		t.Errorf("help output:\n%s", stderr.String())
	}
}

func TestBadFlag(t *testing.T) {
	if err := run(context.Background(), []string{"jira-sandbox", "-rate", "fast"}, env(nil), io.Discard, io.Discard); err == nil {
		t.Error("a bad flag value must fail")
	}
}

func TestFlagsSetTheSandbox(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"jira-sandbox", "-addr", "127.0.0.1:0", "-strict-customers", "-desk-access", "restricted",
			"-429-headers", "reset", "-reset-layout", "minutes", "-shuffle-bulk", "-deny-create", "403", "-anonymous-fallback",
			"-createmeta-list", "fields", "-createmeta-page-size", "5", "-tenant-rate", "50", "-hide-emails"}, env(nil), outW, io.Discard)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("no URL printed: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	url := strings.Fields(line)[4]
	res, err := http.Get(url + "/sandbox/config")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.NewDecoder(res.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for k, want := range map[string]any{
		"strictCustomers": true, "deskAccess": "restricted", "rateLimitHeaders": "reset", "rateLimitResetLayout": "2006-01-02T15:04Z",
		"shuffleBulk": true, "denyCreate": "403", "anonymousFallback": true, "createMetaList": "fields", "createMetaPageSize": 5.0,
		"tenantRatePerSecond": 50.0, "hideEmails": true, "hideCustomerEmails": true,
	} {
		if cfg[k] != want {
			t.Errorf("%s = %#v, want %#v", k, cfg[k], want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBadChoiceFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-desk-access", "closed"}, {"-429-headers", "sometimes"}, {"-reset-layout", "hours"},
		{"-deny-create", "401"}, {"-createmeta-list", "items"},
	} {
		if err := run(context.Background(), append([]string{"jira-sandbox", "-addr", "127.0.0.1:0"}, args...), env(nil), io.Discard, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
