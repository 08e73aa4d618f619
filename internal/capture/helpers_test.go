package capture

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/localpg"
)

var pg *localpg.Server

func TestMain(m *testing.M) { os.Exit(capturetest.Main(m, &pg)) }

// The shared world of capture's tests (capturetest), under short names.
type (
	env       = capturetest.Env
	storedMsg = capturetest.StoredMsg
)

var (
	insertSamples = capturetest.InsertSamples
	samples       = capturetest.Samples
	many          = capturetest.Many
	streamMsgs    = capturetest.StreamMsgs
	waitMsgs      = capturetest.WaitMsgs
	readAll       = capturetest.ReadAll
	get           = capturetest.Get
	pkOf          = capturetest.PKOf
)

// newEnv is a fresh database and nats-server running capture.Run.
func newEnv(t *testing.T) *env { return capturetest.New(t, pg, Run) }

// newEnvOn is newEnv on a given Postgres and nats-server (a test that kills
// Postgres, or needs a small max payload, brings its own).
func newEnvOn(t *testing.T, srv *localpg.Server, ns *localnats.Server) *env {
	return capturetest.NewOn(t, srv, ns, Run)
}

// backfill runs Backfill over the whole table with e's configuration.
func backfill(ctx context.Context, t *testing.T, e *env) BackfillResult {
	t.Helper()
	cfg, err := LoadConfig(e.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Backfill(ctx, cfg, time.Time{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return res
}
