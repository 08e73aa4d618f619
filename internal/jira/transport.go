package jira

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
)

// ErrRedirect: Jira answered with a redirect to another site (host, port
// or a downgrade to http); it was not followed, so the credentials went to
// the configured site only.
var ErrRedirect = errors.New("jira: redirect to another site refused")

// httpClient is the client for o: the system's CAs plus o.CAFile, TLS 1.2
// or later, and redirects followed only within the configured site.
func httpClient(o Options) (*http.Client, error) {
	site, _ := url.Parse(o.URL)
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		c.Timeout, c.CheckRedirect = o.Timeout, sameSite(site)
		return &c, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := RootCAs(o.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Timeout: o.Timeout, Transport: tr, CheckRedirect: sameSite(site)}, nil
}

// RootCAs is the system's CA pool with the certificates of file added.
func RootCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system pool (a scratch image): the file alone
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// sameSite lets a redirect through only to the site's own scheme, host
// and port (net/http would forward the Authorization header to the same
// host name on another port, or over plain http).
func sameSite(site *url.URL) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.URL.Scheme != site.Scheme || hostPort(req.URL) != hostPort(site) {
			return fmt.Errorf("%w: %s redirects to %s://%s; set JIRA_URL to the site's own address", ErrRedirect, site.Host, req.URL.Scheme, req.URL.Host)
		}
		return nil
	}
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Untrusted says why a failed TLS verification of Jira's certificate
// failed, and which setting fixes it: "" when err is not one.
func Untrusted(err error) (variable, why string) {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &host):
		return "JIRA_URL", "Jira's TLS certificate is not for the host name of JIRA_URL"
	case errors.As(err, &unknown):
		return "JIRA_CA_FILE", "Jira's TLS certificate is not signed by a CA this host trusts (set JIRA_CA_FILE to the CA that signed it)"
	case errors.As(err, &invalid):
		return "JIRA_CA_FILE", "Jira's TLS certificate is invalid"
	}
	return "", ""
}
