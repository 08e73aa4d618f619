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
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Binary is a set of the binaries that read a variable.
type Binary uint8

const (
	Capture Binary = 1 << iota
	Ticketer
	Both = Capture | Ticketer
)

// Var documents one environment variable: the one table a binary's --help,
// its Reader (defaults) and the deploy checks all read.
type Var struct {
	Name     string
	Default  string
	Help     string
	Required bool
	Secret   bool   // never printed, logged or echoed in errors; also read from NAME_FILE
	File     bool   // its value is the path of a file the binary reads (deploy files must provide it)
	For      Binary // the binaries that read it; 0 = the table's own binary
}

// For is the variables of tables that b reads (For 0 counts as every
// binary), in order: a binary's own table followed by shared ones.
func For(b Binary, tables ...[]Var) []Var {
	var out []Var
	for _, t := range tables {
		for _, v := range t {
			if v.For == 0 || v.For&b != 0 {
				out = append(out, v)
			}
		}
	}
	return out
}

// Error is a bad configuration: one line naming the variable. Every
// configuration error of every binary is one, so callers and tests can ask
// which variable is wrong.
type Error struct {
	Name string
	Err  error
}

func (e *Error) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf is an *Error for the variable name.
func Errorf(name, format string, args ...any) error {
	return &Error{Name: name, Err: fmt.Errorf(format, args...)}
}

// Usage prints the variables with defaults, for --help. Secret defaults are
// never shown (they are empty anyway, but the rule holds); every secret can
// also be read from a file named by NAME_FILE.
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
		help := v.Help
		if v.Secret {
			help += " (never shown; or read from the file named by " + v.Name + "_FILE)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, def, help)
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
		v = stripComment(strings.TrimSpace(v))
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

// stripComment drops a trailing " # comment" as docker compose does: after
// an unquoted value when a blank precedes the #, after a quoted one when
// only blanks separate them. (A # inside a value, a#b, stays.)
func stripComment(v string) string {
	if v != "" && (v[0] == '"' || v[0] == '\'') {
		q := v[0]
		for i := 1; i < len(v); i++ {
			if q == '"' && v[i] == '\\' {
				i++
				continue
			}
			if v[i] == q {
				if rest := strings.TrimSpace(v[i+1:]); rest == "" || rest[0] == '#' {
					return v[:i+1]
				}
				return v
			}
		}
		return v
	}
	for k := 1; k < len(v); k++ {
		if v[k] == '#' && (v[k-1] == ' ' || v[k-1] == '\t') {
			return strings.TrimSpace(v[:k])
		}
	}
	return v
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

// Fail records a problem with the variable name (the first one wins).
func (r *Reader) Fail(name, format string, args ...any) {
	if r.err == nil {
		r.err = Errorf(name, format, args...)
	}
}

// value is the variable as set, trimmed; a secret may instead come from the
// file NAME_FILE names (the convention of the official Docker images), with
// its final line break dropped.
func (r *Reader) value(name string) string {
	v := strings.TrimSpace(r.Get(name))
	if !r.vars[name].Secret {
		return v
	}
	file := strings.TrimSpace(r.Get(name + "_FILE"))
	switch {
	case file == "":
		return v
	case v != "":
		r.Fail(name, "set either %s or %s_FILE, not both", name, name)
		return v
	}
	b, err := os.ReadFile(file)
	if err != nil {
		// The path is not secret; the file's content would be.
		r.Fail(name+"_FILE", "%v", errors.Unwrap(err))
		return ""
	}
	s := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(s) == "" {
		r.Fail(name+"_FILE", "%s is empty", file)
	}
	return s
}

func (r *Reader) raw(name string) string {
	v := r.value(name)
	if v == "" {
		v = r.vars[name].Default
	}
	if v == "" && r.vars[name].Required {
		r.Fail(name, "required but not set (see --help)")
	}
	return v
}

// Secret is a secret's value as set (spaces may be part of a password),
// from NAME or NAME_FILE.
func (r *Reader) Secret(name string) string {
	if strings.TrimSpace(r.Get(name)) == "" || strings.TrimSpace(r.Get(name+"_FILE")) != "" {
		return r.raw(name)
	}
	return r.Get(name)
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
		r.Fail(name, "want a whole number ≥ %d, got %q", min, s)
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
		r.Fail(name, "want a number ≥ 0, got %q", s)
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
		r.Fail(name, "want true or false, got %q", r.raw(name))
		return false
	}
}

// Bytes is a byte count, with an optional KiB/MiB/GiB/TiB or KB/MB/GB/TB
// suffix.
func (r *Reader) Bytes(name string) int64 {
	s := r.raw(name)
	if s == "" {
		return 0
	}
	n, err := parseBytes(s)
	if err != nil {
		r.Fail(name, "%v", err)
	}
	return n
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "GiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

func parseBytes(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a byte count like 1073741824 or 1GiB, got %q", s)
	}
	if n > (1<<63-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// Duration is a Go duration ("30s", "24h") > 0.
func (r *Reader) Duration(name string) time.Duration {
	s := r.raw(name)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.Fail(name, "want a positive duration like 30s or 24h, got %q", s)
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
		r.Fail(name, "not a valid URL")
		return s
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return s
		}
	}
	r.Fail(name, "scheme %q not one of %s", u.Scheme, strings.Join(schemes, ", "))
	return s
}

// Redact hides a URL's secrets, for logs and status output: the password,
// a password in the query (libpq's ?password=), and a NATS token (user
// without password). A comma-separated server list is redacted item by item;
// a comma elsewhere (in a password, in libpq's host list) is part of its URL.
func Redact(raw string) string {
	if items := urlList(raw); len(items) > 1 {
		for i, p := range items {
			items[i] = Redact(p)
		}
		return strings.Join(items, ",")
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

// urlList splits raw at the commas that begin another URL of a scheme the
// binaries take (NATS server lists); any other comma is its URL's.
func urlList(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, ",") {
		t := strings.TrimSpace(p)
		scheme, _, ok := strings.Cut(t, "://")
		if len(out) == 0 || ok && slices.Contains(listSchemes, strings.ToLower(scheme)) {
			out = append(out, t)
			continue
		}
		out[len(out)-1] += "," + p
	}
	return out
}

var listSchemes = []string{"nats", "tls", "ws", "wss"}

// LogLevel is debug, info, warn or error.
func (r *Reader) LogLevel(name string) slog.Level {
	s := r.raw(name)
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		r.Fail(name, "want debug, info, warn or error, got %q", s)
	}
	return l
}
