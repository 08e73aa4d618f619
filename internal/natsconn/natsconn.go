// Package natsconn opens the NATS connection every binary and command uses,
// from the NATS_* variables: one place for servers, credentials, TLS and the
// reconnect policy, and for turning a refused connection into one line
// naming the variable to fix.
package natsconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cowjacket/formjira/internal/config"
)

// Vars are the NATS_* variables.
var Vars = []config.Var{
	{Name: "NATS_URL", For: config.Both, Default: "nats://127.0.0.1:4222", Help: "JetStream server(s), comma-separated (nats:// or tls://)"},
	{Name: "NATS_CREDS", For: config.Both, File: true, Help: "credentials file (user JWT and nkey seed, as nats --creds; decentralized/nsc setups)"},
	{Name: "NATS_NKEY", For: config.Both, File: true, Help: "nkey seed file (as nats --nkey)"},
	{Name: "NATS_USER", For: config.Both, Help: "user name, with NATS_PASSWORD"},
	{Name: "NATS_PASSWORD", For: config.Both, Secret: true, Help: "password of NATS_USER"},
	{Name: "NATS_TOKEN", For: config.Both, Secret: true, Help: "authorization token"},
	{Name: "NATS_TLS_CA", For: config.Both, File: true, Help: "CA certificate(s), PEM, that signed the server's certificate (default: the system's); set: TLS required"},
	{Name: "NATS_TLS_CERT", For: config.Both, File: true, Help: "client certificate, PEM, for mutual TLS (with NATS_TLS_KEY); set: TLS required"},
	{Name: "NATS_TLS_KEY", For: config.Both, File: true, Help: "private key, PEM, of NATS_TLS_CERT"},
}

// Inbox prefixes: each service's replies (JetStream acknowledgements, API
// answers, pulled messages) arrive below its own prefix, and the operators'
// commands' below theirs, so the server can let each user subscribe to its
// own replies only (deploy/nats/nats-server.conf).
const (
	CaptureInbox  = "_INBOX_capture"
	TicketerInbox = "_INBOX_ticketer"
	OperatorInbox = "_INBOX_operator"
)

// Config is how to reach NATS.
type Config struct {
	URL                    string
	Creds, NKey            string // file paths
	User, Password, Token  string
	TLSCA, TLSCert, TLSKey string // file paths

	// OnRefused, when set, is called once when the server refuses a
	// connection Connect already returned (bad credentials on a reconnect,
	// or a TLS failure while connecting in the background), with the one
	// line naming the variable. A service sets it to stop: retrying cannot
	// cure a refusal.
	OnRefused func(error)

	nkey nats.Option // from NATS_NKEY, read by Load
	tls  *tls.Config // from NATS_TLS_*, read by Load; nil: TLS as the URL says
}

// Load reads the NATS_* variables and the files they name; problems are
// left in r.
func Load(r *config.Reader) Config {
	c := Config{
		URL:   r.String("NATS_URL"),
		Creds: r.String("NATS_CREDS"), NKey: r.String("NATS_NKEY"),
		User: r.String("NATS_USER"), Password: r.Secret("NATS_PASSWORD"), Token: r.Secret("NATS_TOKEN"),
		TLSCA: r.String("NATS_TLS_CA"), TLSCert: r.String("NATS_TLS_CERT"), TLSKey: r.String("NATS_TLS_KEY"),
	}
	checkURLs(r, c.URL)
	c.loadAuth(r)
	c.loadTLS(r)
	return c
}

// Redacted is the server list without secrets, for logs and status output.
func (c Config) Redacted() string { return config.Redact(c.URL) }

// Options are the connection options for a client called name: its
// credentials and TLS, reconnecting for ever (half a second apart) with one
// log line per disconnect and reconnect, and every asynchronous error the
// server sends (a permission it refused) logged.
func (c Config) Options(name string, log *slog.Logger) []nats.Option {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil && !nc.IsClosed() {
				log.Warn("NATS disconnected", "err", c.scrub(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			args := []any{"err", c.scrub(err)}
			if sub != nil {
				args = append(args, "subject", sub.Subject)
			}
			log.Error("NATS server error", args...)
		}),
	}
	return append(opts, c.authOptions()...)
}

// WaitForServer are the options of a service that must not fail when no
// server answers at start (a first rollout, a node being replaced): it
// connects in the background, for ever, and says when it did. A server
// that answers and refuses (credentials, TLS) still fails Connect.
func WaitForServer(log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.RetryOnFailedConnect(true),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("NATS connected", "url", nc.ConnectedUrlRedacted()) }),
	}
}

// Connect opens the connection, with extra options after the defaults. The
// first attempt is made here even with RetryOnFailedConnect: a refusal is
// returned as one line naming the variable, and only a server that does
// not answer is waited for in the background.
func Connect(c Config, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	o := nats.GetDefaultOptions()
	for _, s := range strings.Split(c.URL, ",") {
		o.Servers = append(o.Servers, strings.TrimSpace(s))
	}
	for _, opt := range append(c.Options(name, log), extra...) {
		if err := opt(&o); err != nil {
			return nil, c.explain(err)
		}
	}
	stop := c.refused()
	if stop != nil {
		o.ClosedCB = func(nc *nats.Conn) {
			if err := nc.LastError(); isAuth(err) {
				stop(c.explain(err))
			}
		}
	}
	wait := o.RetryOnFailedConnect
	o.RetryOnFailedConnect = false
	nc, err := o.Connect()
	if err != nil && wait && !c.isRefusal(err) {
		log.Warn("NATS does not answer; connecting in the background", "url", c.Redacted(), "err", c.scrub(err))
		o.RetryOnFailedConnect = true
		nc, err = o.Connect()
	}
	if err != nil {
		return nil, c.explain(err)
	}
	if stop != nil {
		go c.watch(nc, stop)
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
