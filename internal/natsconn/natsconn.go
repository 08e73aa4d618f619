// Package natsconn opens the NATS connection every binary and command uses,
// from the NATS_* variables: one place for servers, credentials, TLS and the
// reconnect policy.
package natsconn

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/config"
)

// Vars are the NATS_* variables.
var Vars = []config.Var{
	{Name: "NATS_URL", For: config.Both, Default: "nats://127.0.0.1:4222", Help: "JetStream server(s), comma-separated (nats:// or tls://)"},
}

// Config is how to reach NATS.
type Config struct {
	URL string
}

// Load reads the NATS_* variables; problems are left in r.
func Load(r *config.Reader) Config {
	return Config{URL: r.String("NATS_URL")}
}

// Redacted is the server list without secrets, for logs and status output.
func (c Config) Redacted() string { return config.Redact(c.URL) }

// Options are the connection options for a client called name: its
// credentials, and reconnecting for ever (half a second apart) with one log
// line per disconnect and reconnect.
func (c Config) Options(name string, log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil && !nc.IsClosed() {
				log.Warn("NATS disconnected", "err", err.Error())
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
}

// WaitForServer are the options of a service that must not fail when no
// server answers at start (a first rollout, a node being replaced): it
// connects in the background, for ever, and says when it did.
func WaitForServer(log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.RetryOnFailedConnect(true),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("NATS connected", "url", nc.ConnectedUrlRedacted()) }),
	}
}

// Connect opens the connection, with extra options after the defaults.
func Connect(c Config, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(c.URL, append(c.Options(name, log), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("NATS_URL: connect to %s: %w", c.Redacted(), err)
	}
	return nc, nil
}

// JetStream is Connect with a JetStream context over it.
func JetStream(_ context.Context, c Config, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := Connect(c, name, log, extra...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}
