package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDotEnv(t *testing.T) {
	in := "# comment\nexport A=1\nB = \"two words\"\nC='x=y'\n\nD=\n" +
		// Inline comments as docker compose reads them.
		"E=http://127.0.0.1:8089 # sandbox\nF=a#b\nG=\"quoted # kept\" # dropped\nH=' x ' #\n"
	got, err := ParseDotEnv(strings.NewReader(in), ".env")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": "x=y", "D": "",
		"E": "http://127.0.0.1:8089", "F": "a#b", "G": "quoted # kept", "H": " x "}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := ParseDotEnv(strings.NewReader("NOEQUALS\n"), ".env"); err == nil || !strings.Contains(err.Error(), ".env:1") {
		t.Errorf("err = %v, want line number", err)
	}
}

func TestEnvPrecedence(t *testing.T) {
	env := map[string]string{"A": "env"}
	get := Env(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, map[string]string{"A": "file", "B": "file"})
	if get("A") != "env" || get("B") != "file" || get("C") != "" {
		t.Errorf("A=%q B=%q C=%q", get("A"), get("B"), get("C"))
	}
}

func TestReader(t *testing.T) {
	vars := []Var{
		{Name: "REQ", Required: true},
		{Name: "DUR", Default: "30s"},
		{Name: "N", Default: "4"},
		{Name: "U", Default: "nats://127.0.0.1:4222"},
	}
	tests := []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{"REQ": "x"}, ""},
		{map[string]string{}, "REQ: required"},
		{map[string]string{"REQ": "x", "DUR": "soon"}, "DUR: want a positive duration"},
		{map[string]string{"REQ": "x", "N": "0"}, "N: want a whole number ≥ 1"},
		{map[string]string{"REQ": "x", "U": "http://h"}, `U: scheme "http"`},
	}
	for _, tt := range tests {
		r := NewReader(func(k string) string { return tt.env[k] }, vars)
		r.String("REQ")
		d := r.Duration("DUR")
		r.Int("N", 1)
		r.URL("U", "nats", "tls")
		err := r.Err()
		if tt.wantErr == "" {
			if err != nil || d != 30*time.Second {
				t.Errorf("%v: err=%v d=%v", tt.env, err, d)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
			t.Errorf("%v: err = %v, want prefix %q", tt.env, err, tt.wantErr)
		}
	}
}

func TestUsageHidesSecrets(t *testing.T) {
	var b bytes.Buffer
	Usage(&b, []Var{{Name: "TOKEN", Default: "hunter2", Secret: true, Help: "api token"}, {Name: "X", Default: "1"}})
	if strings.Contains(b.String(), "hunter2") || !strings.Contains(b.String(), "TOKEN") {
		t.Errorf("usage:\n%s", b.String())
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://capture:hunter2@db:5432/forms?sslmode=disable", "postgres://capture:xxxxx@db:5432/forms?sslmode=disable"},
		{"postgres://capture@db/forms?password=hunter2&sslmode=require", "postgres://capture@db/forms?password=xxxxx&sslmode=require"},
		{"nats://s3cr3ttoken@nats:4222", "nats://xxxxx@nats:4222"},
		{"nats://u:hunter2@a:4222,nats://u:hunter2@b:4222", "nats://u:xxxxx@a:4222,nats://u:xxxxx@b:4222"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		// A comma in the password, or in libpq's host list, is the URL's.
		{"postgres://capture:hunter2,3horse@db.internal/forms?sslmode=verify-full", "postgres://capture:xxxxx@db.internal/forms?sslmode=verify-full"},
		{"postgres://capture:hunter2@h1:5432,h2:5432/forms", "postgres://capture:xxxxx@h1:5432,h2:5432/forms"},
		{"nats://u:hunter2@a:4222, nats://u:hunter2@b:4222", "nats://u:xxxxx@a:4222,nats://u:xxxxx@b:4222"},
		// Only a NATS scheme starts another URL: the rest is the secret's.
		{"postgres://u@h/db?password=hunter2,c://3horse", "postgres://u@h/db?password=xxxxx"},
		{"NATS://u:hunter2@a:4222,NATS://u:3horse@b:4222", "nats://u:xxxxx@a:4222,nats://u:xxxxx@b:4222"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, secret := range []string{"hunter2", "3horse", "s3cr3ttoken"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) leaks %s", tt.in, secret)
			}
		}
	}
}

func TestParseBytes(t *testing.T) {
	tests := map[string]int64{
		"0": 0, "1024": 1024, "1GiB": 1 << 30, "2 MiB": 2 << 20, "3KB": 3000, "10B": 10, "1TB": 1e12,
	}
	for in, want := range tests {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "-1", "1.5GiB", "99999999999TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) succeeded", in)
		}
	}
}

func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	file := func(content string) string {
		f, err := os.CreateTemp(dir, "secret")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(content)
		f.Close()
		return f.Name()
	}
	vars := []Var{{Name: "TOKEN", Secret: true}, {Name: "PLAIN"}}
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"variable", map[string]string{"TOKEN": " pass word "}, " pass word ", ""},
		{"file, final newline dropped", map[string]string{"TOKEN_FILE": file("s3cret\n")}, "s3cret", ""},
		{"file keeps inner spaces", map[string]string{"TOKEN_FILE": file(" a b \r\n")}, " a b ", ""},
		{"both", map[string]string{"TOKEN": "x", "TOKEN_FILE": file("y")}, "", "TOKEN: set either TOKEN or TOKEN_FILE, not both"},
		{"missing file", map[string]string{"TOKEN_FILE": filepath.Join(dir, "nope")}, "", "TOKEN_FILE: no such file or directory"},
		{"empty file", map[string]string{"TOKEN_FILE": file("\n")}, "", "TOKEN_FILE: "},
		{"only secrets have a file form", map[string]string{"PLAIN_FILE": file("z")}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(func(k string) string { return tt.env[k] }, vars)
			got := r.Secret("TOKEN")
			r.String("PLAIN")
			err := r.Err()
			if tt.wantErr != "" {
				var ce *Error
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *config.Error starting %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q leaks the secret or is not one line", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestForFiltersByBinary(t *testing.T) {
	own := []Var{{Name: "OWN"}}
	shared := []Var{{Name: "BOTH", For: Both}, {Name: "CAP", For: Capture}, {Name: "TIC", For: Ticketer}}
	var names []string
	for _, v := range For(Ticketer, own, shared) {
		names = append(names, v.Name)
	}
	if got := strings.Join(names, ","); got != "OWN,BOTH,TIC" {
		t.Errorf("For(Ticketer) = %s, want OWN,BOTH,TIC", got)
	}
}
