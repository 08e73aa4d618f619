package natsconn

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cowjacket/formjira/internal/config"
)

// explain turns a failed connection into one line naming the variable to
// fix, with what the server (or the TLS handshake) said.
func (c Config) explain(err error) error {
	if name, why := c.refusal(err); name != "" {
		return config.Errorf(name, "%s: %s", why, c.scrub(err))
	}
	return config.Errorf("NATS_URL", "connect to %s: %s", c.Redacted(), c.scrub(err))
}

// isRefusal: the server answered and said no. Retrying cannot cure it.
func (c Config) isRefusal(err error) bool {
	name, _ := c.refusal(err)
	return name != ""
}

// refusal names the variable behind a refused connection and says why;
// "" when the server did not refuse (unreachable, timed out).
func (c Config) refusal(err error) (name, why string) {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case isAuth(err):
		return c.authVar()
	case errors.As(err, &host):
		return "NATS_URL", "the server's TLS certificate is not for this host name"
	case errors.As(err, &unknown):
		return "NATS_TLS_CA", "the server's TLS certificate is signed by a CA this client does not trust (set NATS_TLS_CA to the CA that signed it)"
	case errors.As(err, &invalid):
		return "NATS_TLS_CA", "the server's TLS certificate is invalid"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return c.tlsVar(), "TLS is required (NATS_TLS_* or tls://) but the server does not offer it"
	case errors.Is(err, nats.ErrTLS) || strings.Contains(err.Error(), "remote error: tls"):
		// The server aborted the handshake: it wants a client
		// certificate, or does not accept this one.
		return "NATS_TLS_CERT", "the server refused the TLS handshake (mutual TLS: NATS_TLS_CERT and NATS_TLS_KEY)"
	}
	return "", ""
}

// isAuth: the server refused the credentials.
func isAuth(err error) bool {
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// authVar names the credentials in use, for a refusal.
func (c Config) authVar() (name, why string) {
	const refused = "the NATS server refused the credentials"
	switch {
	case c.Creds != "":
		return "NATS_CREDS", refused
	case c.NKey != "":
		return "NATS_NKEY", refused
	case c.User != "":
		return "NATS_USER/NATS_PASSWORD", refused
	case c.Token != "":
		return "NATS_TOKEN", refused
	case urlHasUser(c.URL):
		return "NATS_URL", refused
	}
	return "NATS_CREDS", "the NATS server requires credentials (or maps none to the client certificate): set NATS_CREDS, NATS_NKEY, NATS_USER and NATS_PASSWORD, or NATS_TOKEN"
}

func (c Config) tlsVar() string {
	if c.TLSCA == "" && c.TLSCert == "" {
		return "NATS_URL"
	}
	if c.TLSCA != "" {
		return "NATS_TLS_CA"
	}
	return "NATS_TLS_CERT"
}

// refused is OnRefused, at most once; nil when unset.
func (c Config) refused() func(error) {
	if c.OnRefused == nil {
		return nil
	}
	var once sync.Once
	return func(err error) { once.Do(func() { c.OnRefused(err) }) }
}

// watchEvery is how often watch looks at a reconnecting connection.
const watchEvery = 250 * time.Millisecond

// watch stops (and closes) a connection whose reconnecting meets a TLS
// refusal: nats.go closes it after the same authorization error twice
// (ClosedCB reports that), but retries a failed TLS handshake for ever
// without a callback, leaving only its last error to look at.
func (c Config) watch(nc *nats.Conn, stop func(error)) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for range t.C {
		switch nc.Status() {
		case nats.CLOSED:
			return
		case nats.RECONNECTING:
			if err := nc.LastError(); err != nil && !isAuth(err) && c.isRefusal(err) {
				stop(c.explain(err))
				nc.Close()
				return
			}
		}
	}
}

// Forbidden is the one line for a start-up that the server refuses a
// permission (its answer is an asynchronous error, and the request itself
// only times out): nil unless nc's last error is a permissions violation.
// Retrying cannot cure it, so the caller stops.
func (c Config) Forbidden(nc *nats.Conn) error {
	err := nc.LastError()
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	name, _ := c.authVar()
	return config.Errorf(name, "the NATS server refuses this user a permission it needs (%s); deploy/nats/nats-server.conf and docs/security.md say which user runs what", c.scrub(err))
}
