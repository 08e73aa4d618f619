// Package smtptest is a real SMTP server (go-smtp) for tests, in the spirit
// of net/http/httptest: STARTTLS with a throwaway certificate, AUTH PLAIN
// with fixed credentials, injectable failures, and the mails it received.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	User = "alerts@cowjacket.test"
	Pass = "s3cret-pa55"
)

// Mail is one message the test SMTP server accepted.
type Mail struct {
	From    string
	To      []string
	User    string // AUTH PLAIN user the session authenticated as
	TLS     bool   // DATA arrived over STARTTLS
	Subject string
	Body    string // decoded from quoted-printable, LF line ends
	Header  mail.Header
}

// Server is a real SMTP server (go-smtp) listening on 127.0.0.1.
type Server struct {
	Addr string
	srv  *smtp.Server

	// FailCode, when non-zero, is returned to DATA (e.g. 451) instead of
	// accepting the message.
	FailCode  atomic.Int32
	DataCalls atomic.Int32

	mu    sync.Mutex
	mails []Mail
	auths []string // "user:pass" of every AUTH attempt
}

type Options struct {
	StartTLS bool   // offer STARTTLS with a self-signed certificate
	Addr     string // listen here instead of a fresh port
}

func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ms := &Server{}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ms: ms, conn: c}, nil
	}))
	s.Domain = "localhost"
	s.ErrorLog = log.New(io.Discard, "", 0) // clients hanging up mid-session are expected here
	s.ReadTimeout = 5 * time.Second
	s.WriteTimeout = 5 * time.Second
	if o.StartTLS {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}}
	} else {
		// Offer AUTH in the clear: the client must still refuse to use it
		// when it requires STARTTLS.
		s.AllowInsecureAuth = true
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ms.Addr, ms.srv = l.Addr().String(), s
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return ms
}

func (ms *Server) Mails() []Mail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]Mail(nil), ms.mails...)
}

func (ms *Server) Auths() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]string(nil), ms.auths...)
}

// WaitMails waits until at least n mails arrived, failing after timeout.
func (ms *Server) WaitMails(t testing.TB, n int, timeout time.Duration) []Mail {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := ms.Mails(); len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d mails, want %d within %s", len(ms.Mails()), n, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type session struct {
	ms   *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.ms.mu.Lock()
		s.ms.auths = append(s.ms.auths, user+":"+pass)
		s.ms.mu.Unlock()
		if user != User || pass != Pass {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	s.ms.DataCalls.Add(1)
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if code := s.ms.FailCode.Load(); code != 0 {
		return &smtp.SMTPError{Code: int(code), EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	_, tlsOn := s.conn.TLSConnectionState()
	s.ms.mu.Lock()
	s.ms.mails = append(s.ms.mails, Mail{
		From: s.from, To: append([]string(nil), s.to...), User: s.user, TLS: tlsOn,
		Subject: subject, Body: strings.ReplaceAll(string(body), "\r\n", "\n"), Header: msg.Header,
	})
	s.ms.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// selfSignedCert makes a throwaway certificate for 127.0.0.1/localhost.
func selfSignedCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ListenSilent accepts connections on addr and never speaks: an SMTP server
// that hangs.
func ListenSilent(t testing.TB, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l
}
