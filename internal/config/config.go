// Package config reads a binary's settings from the environment and a .env
// file, prints them for --help, and turns the first bad one into a single
// line naming the variable.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Var documents one environment variable.
type Var struct {
	Name     string
	Default  string
	Help     string
	Required bool
	Secret   bool // never printed, logged or echoed in errors
}

// Usage prints the variables with defaults, for --help. Secret defaults are
// never shown (they are empty anyway, but the rule holds).
func Usage(w io.Writer, vars []Var) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range vars {
		def := v.Default
		switch {
		case v.Required:
			def = "(required)"
		case v.Secret && def != "":
			def = "(set)"
		case def == "":
			def = "(empty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, v.Help)
	}
	tw.Flush()
}

// LoadDotEnv reads KEY=VALUE lines from path (a missing file is no error, as
// with the original script). Blank lines and # comments are skipped; values
// may be single- or double-quoted; "export " prefixes are allowed.
func LoadDotEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseDotEnv(f, path)
}

// ParseDotEnv parses .env content; name is used in error messages.
func ParseDotEnv(r io.Reader, name string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimPrefix(s, "export ")
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE", name, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			if v[0] == '"' {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				} else {
					v = v[1 : len(v)-1]
				}
			} else {
				v = v[1 : len(v)-1]
			}
		}
		out[k] = v
	}
	return out, sc.Err()
}

// Env layers the process environment over a .env file: a variable set in the
// environment (even to "") wins, as operators expect from their shell.
func Env(getenv func(string) string, lookup func(string) (string, bool), dotenv map[string]string) func(string) string {
	return func(k string) string {
		if lookup != nil {
			if v, ok := lookup(k); ok {
				return v
			}
		} else if v := getenv(k); v != "" {
			return v
		}
		return dotenv[k]
	}
}

// Reader parses typed values and keeps the first error, so a binary can read
// every setting and then report one line naming the bad variable.
type Reader struct {
	Get  func(string) string
	vars map[string]Var
	err  error
}

// NewReader reads with get and applies the defaults of vars.
func NewReader(get func(string) string, vars []Var) *Reader {
	m := make(map[string]Var, len(vars))
	for _, v := range vars {
		m[v.Name] = v
	}
	return &Reader{Get: get, vars: m}
}

// Err is the first problem found.
func (r *Reader) Err() error { return r.err }

func (r *Reader) fail(name, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
}

func (r *Reader) raw(name string) string {
	v := strings.TrimSpace(r.Get(name))
	if v == "" {
		v = r.vars[name].Default
	}
	if v == "" && r.vars[name].Required {
		r.fail(name, "required but not set (see --help)")
	}
	return v
}

// String is the variable's value or its default.
func (r *Reader) String(name string) string { return r.raw(name) }

// List is a comma-separated list, items trimmed, empty items dropped.
func (r *Reader) List(name string) []string {
	var out []string
	for _, s := range strings.Split(r.raw(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Int is a whole number ≥ min.
func (r *Reader) Int(name string, min int) int {
	s := r.raw(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		r.fail(name, "want a whole number ≥ %d, got %q", min, s)
	}
	return n
}

// Float is a number ≥ 0.
func (r *Reader) Float(name string) float64 {
	s := r.raw(name)
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		r.fail(name, "want a number ≥ 0, got %q", s)
	}
	return f
}

// Bool accepts the usual spellings (1/0, true/false, yes/no, on/off).
func (r *Reader) Bool(name string) bool {
	switch strings.ToLower(r.raw(name)) {
	case "1", "true", "yes", "on":
		return true
	case "", "0", "false", "no", "off":
		return false
	default:
		r.fail(name, "want true or false, got %q", r.raw(name))
		return false
	}
}

// Duration is a Go duration ("30s", "24h") > 0.
func (r *Reader) Duration(name string) time.Duration {
	s := r.raw(name)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.fail(name, "want a positive duration like 30s or 24h, got %q", s)
	}
	return d
}

// URL is an absolute URL with one of the schemes. Credentials in it are
// never echoed back in the error.
func (r *Reader) URL(name string, schemes ...string) string {
	s := r.raw(name)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" && u.Path == "" {
		r.fail(name, "not a valid URL")
		return s
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return s
		}
	}
	r.fail(name, "scheme %q not one of %s", u.Scheme, strings.Join(schemes, ", "))
	return s
}

// Redact hides a URL's secrets, for logs and status output: the password,
// a password in the query (libpq's ?password=), and a NATS token (user
// without password). A comma-separated server list is redacted item by item.
func Redact(raw string) string {
	if strings.Contains(raw, ",") {
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			parts[i] = Redact(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		_, hasPass := u.User.Password()
		if !hasPass && slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
			u.User = url.User("xxxxx")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") || strings.EqualFold(k, "token") {
			q.Set(k, "xxxxx")
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
