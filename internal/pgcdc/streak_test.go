package pgcdc

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestStreakWarnsOnRepeatedFailures: one failure is Debug; the third in a
// row is one Warn naming what it costs; the recovery after it is logged.
func TestStreakWarnsOnRepeatedFailures(t *testing.T) {
	var b strings.Builder
	s := &streak{what: "heartbeat", why: "an idle slot does not advance", log: slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	boom := errors.New("connection refused")
	s.observe(boom)
	s.observe(nil)
	s.observe(boom)
	s.observe(boom)
	if b.Len() != 0 {
		t.Fatalf("logged before the third failure in a row:\n%s", b.String())
	}
	s.observe(boom)
	s.observe(boom)
	s.observe(nil)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "heartbeat keeps failing: an idle slot does not advance") ||
		!strings.Contains(lines[1], "heartbeat works again") {
		t.Errorf("log:\n%s", b.String())
	}
}
