package stream

import (
	"context"
	"testing"
	"time"
)

// TestEnsureFormsKeepsOperatorLimits: capture sets FORMS up at every start;
// the limits an operator gave it (nats stream edit FORMS --max-age …) stay,
// while capture's own settings (the duplicate window) are put back.
func TestEnsureFormsKeepsOperatorLimits(t *testing.T) {
	js := connect(t)
	ctx := context.Background()
	if _, err := EnsureForms(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	edited := FormsConfig(Config{})
	edited.MaxAge, edited.MaxBytes, edited.MaxMsgs, edited.Duplicates = 90*24*time.Hour, 1<<30, 1_000_000, time.Hour
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	s, err := EnsureForms(ctx, js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.MaxAge != edited.MaxAge || got.MaxBytes != edited.MaxBytes || got.MaxMsgs != edited.MaxMsgs {
		t.Errorf("limits after a restart: max age %v, bytes %d, msgs %d; want the operator's %v, %d, %d",
			got.MaxAge, got.MaxBytes, got.MaxMsgs, edited.MaxAge, edited.MaxBytes, edited.MaxMsgs)
	}
	if got.Duplicates != 24*time.Hour {
		t.Errorf("duplicate window %v, want capture's 24h back", got.Duplicates)
	}
}
