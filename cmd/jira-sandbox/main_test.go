package main

import (
	"bufio"
	"bytes"
	"context"
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
