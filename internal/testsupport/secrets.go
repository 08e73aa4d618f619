package testsupport

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Leaks names the secrets (name → value) that out shows, as they are or
// in a form a program might print them: URL-escaped, JSON-escaped, base64
// (an Authorization header). Values shorter than 6 bytes are too common
// to look for.
func Leaks(out string, secrets map[string]string) []string {
	var found []string
	for name, v := range secrets {
		if len(v) < 6 {
			continue
		}
		j, _ := json.Marshal(v)
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v), strings.Trim(string(j), `"`),
			base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v))} {
			if strings.Contains(out, form) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}

// WriteTemp writes content to a file name in a test directory.
func WriteTemp(tb testing.TB, name, content string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// ReadFile is the content of path, failing tb.
func ReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
