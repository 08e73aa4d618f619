package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/cowjacket/formjira/internal/config"
)

// checkURLs accepts comma-separated nats://, tls://, ws:// or wss:// URLs.
// A URL may carry a password, so it is never echoed.
func checkURLs(r *config.Reader, list string) {
	for i, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		switch {
		case err != nil || u.Host == "":
			r.Fail("NATS_URL", "server %d is not a URL like nats://host:4222", i+1)
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			r.Fail("NATS_URL", "server %d: scheme %q, want nats, tls, ws or wss", i+1, u.Scheme)
		}
	}
}

// loadAuth checks that at most one way to authenticate is set and that its
// files hold what they should.
func (c *Config) loadAuth(r *config.Reader) {
	var set []string
	for _, m := range []struct {
		name string
		on   bool
	}{
		{"NATS_URL", urlHasUser(c.URL)}, {"NATS_CREDS", c.Creds != ""}, {"NATS_NKEY", c.NKey != ""},
		{"NATS_USER", c.User != "" || c.Password != ""}, {"NATS_TOKEN", c.Token != ""},
	} {
		if m.on {
			set = append(set, m.name)
		}
	}
	if len(set) > 1 {
		r.Fail(set[1], "set only one way to authenticate (%s are set)", strings.Join(set, " and "))
		return
	}
	switch {
	case c.User != "" && c.Password == "":
		r.Fail("NATS_PASSWORD", "required with NATS_USER")
	case c.Password != "" && c.User == "":
		r.Fail("NATS_USER", "required with NATS_PASSWORD")
	case c.Creds != "":
		checkCreds(r, c.Creds)
	case c.NKey != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKey)
		var pe *os.PathError
		switch {
		case errors.As(err, &pe):
			r.Fail("NATS_NKEY", "%v", fileErr(err))
		case err != nil:
			r.Fail("NATS_NKEY", "%s: %v", c.NKey, err)
		}
		c.nkey = opt
	}
}

// checkCreds reads a .creds file the way nats.go will at every connect:
// a user JWT and a user nkey seed.
func checkCreds(r *config.Reader, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		r.Fail("NATS_CREDS", "%v", fileErr(err))
		return
	}
	tok, err := nkeys.ParseDecoratedJWT(b)
	if err == nil {
		_, err = jwt.DecodeUserClaims(tok)
	}
	if err != nil {
		r.Fail("NATS_CREDS", "%s holds no user JWT (want a .creds file as nsc generate creds writes it): %v", path, err)
		return
	}
	if _, err := nkeys.ParseDecoratedUserNKey(b); err != nil {
		r.Fail("NATS_CREDS", "%s holds no user nkey seed: %v", path, err)
	}
}

// loadTLS builds the client's TLS configuration from NATS_TLS_*. Any of
// them set means TLS is required, whatever the URL's scheme: a plaintext
// server is refused rather than silently used.
func (c *Config) loadTLS(r *config.Reader) {
	if c.TLSCA == "" && c.TLSCert == "" && c.TLSKey == "" {
		return
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		t.RootCAs = readPool(r, "NATS_TLS_CA", c.TLSCA)
	}
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		r.Fail("NATS_TLS_KEY", "required with NATS_TLS_CERT")
	case c.TLSKey != "" && c.TLSCert == "":
		r.Fail("NATS_TLS_CERT", "required with NATS_TLS_KEY")
	case c.TLSCert != "":
		if cert, ok := readKeyPair(r, "NATS_TLS_CERT", c.TLSCert, "NATS_TLS_KEY", c.TLSKey); ok {
			t.Certificates = []tls.Certificate{cert}
		}
	}
	c.tls = t
}

// readPool is the PEM certificates of the file variable name names.
func readPool(r *config.Reader, name, path string) *x509.CertPool {
	b, err := os.ReadFile(path)
	if err != nil {
		r.Fail(name, "%v", fileErr(err))
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		r.Fail(name, "%s holds no PEM certificate", path)
	}
	return pool
}

// readKeyPair is a certificate and its key, each problem blamed on the
// variable of the file at fault. The key's content never reaches an error.
func readKeyPair(r *config.Reader, certVar, certPath, keyVar, keyPath string) (tls.Certificate, bool) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		r.Fail(certVar, "%v", fileErr(err))
		return tls.Certificate{}, false
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		r.Fail(keyVar, "%v", fileErr(err))
		return tls.Certificate{}, false
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		name, path := keyVar, keyPath
		if strings.Contains(err.Error(), "certificate") && !strings.Contains(err.Error(), "private key") {
			name, path = certVar, certPath
		}
		r.Fail(name, "%s: %v", path, err)
		return tls.Certificate{}, false
	}
	return cert, true
}

// fileErr drops the operation from a file error ("open x: no such file" →
// "x: no such file"), keeping the path, which is not secret.
func fileErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return errors.New(pe.Path + ": " + pe.Err.Error())
	}
	return err
}

// authOptions are the credentials and TLS as nats.go options.
func (c Config) authOptions() []nats.Option {
	var opts []nats.Option
	switch {
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.nkey != nil:
		opts = append(opts, c.nkey)
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	}
	if c.tls != nil {
		opts = append(opts, nats.Secure(c.tls))
	}
	return opts
}

// urlHasUser: a server URL carries a user (and password) or a token.
func urlHasUser(list string) bool {
	for _, s := range strings.Split(list, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// secrets are the values no message may show: the password, the token and
// whatever the URLs carry.
func (c Config) secrets() []string {
	out := []string{c.Password, c.Token}
	for _, s := range strings.Split(c.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			p, ok := u.User.Password()
			if !ok {
				p = u.User.Username() // a token
			}
			out = append(out, p)
		}
	}
	return out
}

// scrub is err's text with every secret replaced.
func (c Config) scrub(err error) string {
	s := err.Error()
	for _, v := range c.secrets() {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, "xxxxx")
		}
	}
	return s
}
