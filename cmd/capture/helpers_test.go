package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/capture/capturetest"
	"github.com/cowjacket/formjira/internal/localpg"
	"github.com/cowjacket/formjira/internal/testsupport"
)

var pg *localpg.Server

func TestMain(m *testing.M) { os.Exit(capturetest.Main(m, &pg)) }

type env = capturetest.Env

var (
	insertSamples = capturetest.InsertSamples
	samples       = capturetest.Samples
	waitMsgs      = capturetest.WaitMsgs
	readAll       = capturetest.ReadAll
	get           = capturetest.Get
)

// service is the binary's service command, in-process.
func service(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	return program.Run(ctx, nil, getenv, stdout, stderr)
}

// newEnv is a fresh database and nats-server; Start runs the binary's service.
func newEnv(t *testing.T) *env { return capturetest.New(t, pg, service) }

// run runs the binary with args and e's variables, returning its stdout.
func run(e *env, args ...string) (string, error) {
	e.T.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := program.Run(ctx, args, e.Getenv, &out, io.Discard)
	return out.String(), err
}

// trustingAStranger is dsn trusting another CA than the one that signed the
// server's certificate.
func trustingAStranger(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("sslrootcert", testsupport.NewCA(t, "stranger").File)
	u.RawQuery = q.Encode()
	return u.String()
}
