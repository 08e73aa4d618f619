package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// ErrNoStartTLS is returned when STARTTLS is required but the server does
// not offer it; no credentials or mail are sent.
var ErrNoStartTLS = errors.New("server does not offer STARTTLS")

// SMTPSink sends alerts as plain-text e-mail over SMTP with STARTTLS and
// AUTH PLAIN.
type SMTPSink struct {
	addr, host         string
	username, password string
	startTLS           bool
	insecureSkipVerify bool
	from               *mail.Address
	to                 []*mail.Address
	timeout            time.Duration
}

// NewSMTPSink builds the e-mail sink from cfg's SMTP and e-mail fields
// (validated by ConfigFromEnv; bad addresses surface as Send errors).
func NewSMTPSink(cfg Config) *SMTPSink {
	cfg = cfg.withDefaults()
	host, _, _ := net.SplitHostPort(cfg.SMTPAddr)
	s := &SMTPSink{
		addr:               cfg.SMTPAddr,
		host:               host,
		username:           cfg.SMTPUsername,
		password:           cfg.SMTPPassword,
		startTLS:           cfg.SMTPStartTLS,
		insecureSkipVerify: cfg.SMTPInsecureSkipVerify,
		timeout:            cfg.SendTimeout,
	}
	s.from, _ = mail.ParseAddress(cfg.EmailFrom)
	for _, t := range cfg.EmailTo {
		if a, err := mail.ParseAddress(t); err == nil {
			s.to = append(s.to, a)
		}
	}
	return s
}

// String names the sink in logs without credentials.
func (s *SMTPSink) String() string { return "smtp " + s.addr }

// Send delivers one message to every recipient in a single SMTP session.
func (s *SMTPSink) Send(ctx context.Context, subject, body string, _ []Alert) (err error) {
	if s.from == nil || len(s.to) == 0 {
		return Permanent(errors.New("smtp: no valid From or To address"))
	}
	msg, err := s.compose(subject, body)
	if err != nil {
		return Permanent(err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	// net/smtp has no context support: a deadline bounds every read and
	// write, and cancellation unblocks them at once.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", classifySMTP(err))
	}
	defer c.Close()

	if s.startTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return Permanent(fmt.Errorf("smtp %s: %w", s.addr, ErrNoStartTLS))
		}
		tc := &tls.Config{
			ServerName:         s.host,
			InsecureSkipVerify: s.insecureSkipVerify, //nolint:gosec // opt-in for self-signed test servers
			MinVersion:         tls.VersionTLS12,
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("smtp starttls: %w", classifySMTP(err))
		}
	}
	if s.username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return Permanent(errors.New("smtp: server does not offer AUTH"))
		}
		// PlainAuth itself refuses to send the password over an
		// unencrypted connection to anything but localhost.
		if err := c.Auth(smtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return fmt.Errorf("smtp auth as %s: %w", s.username, classifySMTP(err))
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", classifySMTP(err))
	}
	for _, to := range s.to {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("smtp RCPT TO %s: %w", to.Address, classifySMTP(err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp DATA: %w", classifySMTP(err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp DATA: %w", classifySMTP(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp DATA: %w", classifySMTP(err))
	}
	// The message is accepted once DATA is closed; a failed QUIT must not
	// cause a resend.
	_ = c.Quit()
	return nil
}

// classifySMTP marks 5xx replies permanent: the server has said retrying
// the same thing will not help. 4xx and network errors stay retryable.
func classifySMTP(err error) error {
	var tp *textproto.Error
	if errors.As(err, &tp) && tp.Code >= 500 {
		return Permanent(err)
	}
	if err != nil && err.Error() == "unencrypted connection" {
		return Permanent(err)
	}
	return err
}

func (s *SMTPSink) compose(subject, body string) ([]byte, error) {
	var b bytes.Buffer
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := "localhost"
	if i := strings.LastIndexByte(s.from.Address, '@'); i >= 0 {
		domain = s.from.Address[i+1:]
	}
	// Header values are ours or parsed addresses; the subject is sanitised
	// so alert text cannot inject headers.
	subject = strings.Join(strings.Fields(subject), " ")
	fmt.Fprintf(&b, "From: %s\r\n", s.from.String())
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n")
	b.WriteString("Auto-Submitted: auto-generated\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
