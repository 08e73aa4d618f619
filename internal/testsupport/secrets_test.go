package testsupport

import (
	"encoding/base64"
	"net/url"
	"testing"
)

// The scanner finds a secret in every form a program might print it.
func TestLeaks(t *testing.T) {
	secrets := map[string]string{"token": "s3cr3t/value+x", "short": "abc"}
	for _, out := range []string{
		"token=s3cr3t/value+x",
		"url=" + url.QueryEscape("s3cr3t/value+x"),
		`{"t":"s3cr3t/value+x"}`,
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("s3cr3t/value+x")),
	} {
		if got := Leaks(out, secrets); len(got) != 1 || got[0] != "token" {
			t.Errorf("Leaks(%q) = %v, want [token]", out, got)
		}
	}
	if got := Leaks("nothing here but abc", secrets); len(got) != 0 {
		t.Errorf("Leaks found %v in an innocent line", got)
	}
}
