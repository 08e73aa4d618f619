package alert

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cowjacket/formjira/internal/config"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	c, err := ConfigFromEnv(envFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Enabled() {
		t.Error("enabled with no sink configured")
	}
	if !c.SMTPStartTLS || c.SMTPInsecureSkipVerify {
		t.Errorf("TLS defaults: starttls=%v skip=%v", c.SMTPStartTLS, c.SMTPInsecureSkipVerify)
	}
	want := map[string]time.Duration{
		"digest": 10 * time.Minute, "min": 15 * time.Minute, "jira": 5 * time.Minute,
		"capture": 5 * time.Minute, "backlog": 10 * time.Minute,
	}
	got := map[string]time.Duration{
		"digest": c.DigestInterval, "min": c.MinInterval, "jira": c.JiraDownAfter,
		"capture": c.CaptureStallAfter, "backlog": c.BacklogGrowingAfter,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}
	if c.SlotLagBytes != 1<<30 {
		t.Errorf("SlotLagBytes = %d, want 1GiB", c.SlotLagBytes)
	}
}

func TestVarsDocumentEveryVariableRead(t *testing.T) {
	read := map[string]bool{}
	_, _ = ConfigFromEnv(func(k string) string { read[k] = true; return "" })
	documented := map[string]bool{}
	for _, v := range Vars {
		documented[v.Name] = true
		if v.Secret {
			documented[v.Name+"_FILE"] = true // config.Reader's file form
		}
		if v.Help == "" {
			t.Errorf("%s has no help", v.Name)
		}
	}
	for k := range read {
		if !documented[k] {
			t.Errorf("%s is read but not in Vars", k)
		}
	}
	for k := range documented {
		if !read[k] {
			t.Errorf("%s is documented but never read", k)
		}
	}
}

func TestConfigFromEnvFull(t *testing.T) {
	c, err := ConfigFromEnv(envFrom(map[string]string{
		"ALERT_SMTP_ADDR":             "smtp.example.com:587",
		"ALERT_SMTP_USERNAME":         "bot",
		"ALERT_SMTP_PASSWORD":         "hunter2",
		"ALERT_SMTP_STARTTLS":         "false",
		"ALERT_EMAIL_FROM":            "Bot <bot@example.com>",
		"ALERT_EMAIL_TO":              " a@example.com , b@example.com,",
		"ALERT_WEBHOOK_URL":           "https://hooks.slack.com/services/T0/B0/SECRETTOKEN",
		"ALERT_DIGEST_INTERVAL":       "5m",
		"ALERT_MIN_INTERVAL":          "1h",
		"ALERT_SLOT_LAG_BYTES":        "512MiB",
		"ALERT_BACKLOG_GROWING_AFTER": "90s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || len(c.Sinks()) != 2 {
		t.Errorf("enabled=%v sinks=%d, want both sinks", c.Enabled(), len(c.Sinks()))
	}
	if c.SMTPStartTLS {
		t.Error("ALERT_SMTP_STARTTLS=false ignored")
	}
	if strings.Join(c.EmailTo, "|") != "a@example.com|b@example.com" {
		t.Errorf("EmailTo = %q", c.EmailTo)
	}
	if c.DigestInterval != 5*time.Minute || c.MinInterval != time.Hour || c.BacklogGrowingAfter != 90*time.Second {
		t.Errorf("durations: %s %s %s", c.DigestInterval, c.MinInterval, c.BacklogGrowingAfter)
	}
	if c.SlotLagBytes != 512<<20 {
		t.Errorf("SlotLagBytes = %d", c.SlotLagBytes)
	}
	// Secrets never reach logs or %v.
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("config", "alert", c)
	for _, out := range []string{sb.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "SECRETTOKEN") {
			t.Errorf("secret in output: %s", out)
		}
	}
	if !strings.Contains(sb.String(), "hooks.slack.com") {
		t.Errorf("log should still name the webhook host: %s", sb.String())
	}
}

func TestConfigFromEnvErrorsNameTheVariable(t *testing.T) {
	smtp := map[string]string{
		"ALERT_SMTP_ADDR": "smtp.example.com:587", "ALERT_EMAIL_FROM": "bot@example.com",
		"ALERT_EMAIL_TO": "a@example.com", "ALERT_SMTP_USERNAME": "bot", "ALERT_SMTP_PASSWORD": "pw",
	}
	with := func(base map[string]string, k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		bad  string
	}{
		{"bad duration", map[string]string{"ALERT_DIGEST_INTERVAL": "ten minutes"}, "ALERT_DIGEST_INTERVAL"},
		{"zero duration", map[string]string{"ALERT_MIN_INTERVAL": "0s"}, "ALERT_MIN_INTERVAL"},
		{"negative duration", map[string]string{"ALERT_JIRA_DOWN_AFTER": "-5m"}, "ALERT_JIRA_DOWN_AFTER"},
		{"bad bool", map[string]string{"ALERT_SMTP_STARTTLS": "yes please"}, "ALERT_SMTP_STARTTLS"},
		{"bad skip verify", map[string]string{"ALERT_SMTP_INSECURE_SKIP_VERIFY": "maybe"}, "ALERT_SMTP_INSECURE_SKIP_VERIFY"},
		{"bad bytes", map[string]string{"ALERT_SLOT_LAG_BYTES": "lots"}, "ALERT_SLOT_LAG_BYTES"},
		{"addr without port", with(smtp, "ALERT_SMTP_ADDR", "smtp.example.com"), "ALERT_SMTP_ADDR"},
		{"missing from", with(smtp, "ALERT_EMAIL_FROM", ""), "ALERT_EMAIL_FROM"},
		{"bad from", with(smtp, "ALERT_EMAIL_FROM", "not an address"), "ALERT_EMAIL_FROM"},
		{"missing to", with(smtp, "ALERT_EMAIL_TO", " , "), "ALERT_EMAIL_TO"},
		{"bad to", with(smtp, "ALERT_EMAIL_TO", "a@example.com,@@"), "ALERT_EMAIL_TO"},
		{"user without password", with(smtp, "ALERT_SMTP_PASSWORD", ""), "ALERT_SMTP_PASSWORD"},
		{"password without user", with(smtp, "ALERT_SMTP_USERNAME", ""), "ALERT_SMTP_USERNAME"},
		{"webhook scheme", map[string]string{"ALERT_WEBHOOK_URL": "ftp://x/SECRETTOKEN"}, "ALERT_WEBHOOK_URL"},
		{"webhook no host", map[string]string{"ALERT_WEBHOOK_URL": "https:///SECRETTOKEN"}, "ALERT_WEBHOOK_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(envFrom(tt.env))
			var ve *config.Error
			if !errors.As(err, &ve) || ve.Name != tt.bad {
				t.Fatalf("error = %v, want one naming %s", err, tt.bad)
			}
			if !strings.HasPrefix(err.Error(), tt.bad+": ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line starting with the variable", err)
			}
			if strings.Contains(err.Error(), "SECRETTOKEN") || strings.Contains(err.Error(), `"pw"`) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}
