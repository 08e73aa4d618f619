package webauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/testsupport"
	"github.com/cowjacket/formjira/internal/webauth"
	"github.com/cowjacket/formjira/internal/webauth/oidctest"
)

// console is a stand-in for the console's handlers behind the real Auth,
// over TLS (the cookies are Secure).
type console struct {
	t    *testing.T
	srv  *httptest.Server
	auth *webauth.Auth
	logs testsupport.Buffer // what the console logged
}

func newConsole(t *testing.T, cfg func(base string) webauth.Config) *console {
	t.Helper()
	c := &console{t: t}
	var h http.Handler = http.NotFoundHandler()
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	a, err := webauth.New(context.Background(), cfg(c.srv.URL), slog.New(slog.NewTextHandler(&c.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a.Login = func(w http.ResponseWriter, r *http.Request, status int, d webauth.LoginData) {
		w.WriteHeader(status)
		io.WriteString(w, "login page "+d.Error)
	}
	c.auth = a
	mux := http.NewServeMux()
	a.Routes(mux)
	whoami := func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"user": webauth.UserFrom(r.Context()), "csrf": webauth.CSRFFrom(r.Context())})
	}
	act := func(w http.ResponseWriter, r *http.Request) {
		if webauth.RequireOperator(w, r, true) {
			io.WriteString(w, "done")
		}
	}
	mux.Handle("GET /{$}", a.Pages(http.HandlerFunc(whoami)))
	mux.Handle("POST /act", a.Pages(http.HandlerFunc(act)))
	mux.Handle("GET /api/whoami", a.API(http.HandlerFunc(whoami)))
	mux.Handle("POST /api/act", a.API(http.HandlerFunc(act)))
	h = mux
	return c
}

// browser is a client with cookies.
func (c *console) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: c.srv.Client().Transport, Jar: jar}
}

func (c *console) do(cl *http.Client, method, path string, body url.Values, hdr map[string]string) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		if k == "basic" {
			u, p, _ := strings.Cut(v, ":")
			req.SetBasicAuth(u, p)
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := cl.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func usersFile(t *testing.T, lines ...string) string {
	t.Helper()
	var out []string
	for _, l := range lines {
		name, pass, _ := strings.Cut(l, ":")
		line, err := webauth.HashPassword(name, pass)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, line)
	}
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNoSourceRefusesToStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "users")
	os.WriteFile(bad, []byte("oper:plaintext\n"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  webauth.Config
		want string
	}{
		{"no source", webauth.Config{}, "CONSOLE_USERS_FILE"},
		{"not bcrypt", webauth.Config{UsersFile: bad}, "CONSOLE_USERS_FILE"},
		{"unknown operator", webauth.Config{UsersFile: usersFile(t, "a:b"), Operators: []string{"zed"}}, "CONSOLE_OPERATORS"},
		{"oidc without client", webauth.Config{OIDC: webauth.OIDCConfig{Issuer: "http://127.0.0.1:1"}}, "CONSOLE_OIDC_CLIENT_ID"},
		{"oidc without URL", webauth.Config{OIDC: webauth.OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s"}}, "CONSOLE_URL"},
		{"oidc unreachable", webauth.Config{URL: "https://c", OIDC: webauth.OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s"}}, "CONSOLE_OIDC_ISSUER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webauth.New(context.Background(), tc.cfg, slog.New(slog.DiscardHandler))
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Name != tc.want || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line naming %s", err, tc.want)
			}
		})
	}
}

func TestPasswordAndBasicAuth(t *testing.T) {
	file := usersFile(t, "oper:oper-pass", "view:view-pass")
	c := newConsole(t, func(string) webauth.Config { return webauth.Config{UsersFile: file, Operators: []string{"oper"}} })
	anon := &http.Client{Transport: c.srv.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if st, _ := c.do(anon, "GET", "/", nil, nil); st != http.StatusSeeOther {
		t.Errorf("anonymous page: %d, want a redirect to the login", st)
	}
	if st, _ := c.do(anon, "GET", "/api/whoami", nil, nil); st != http.StatusUnauthorized {
		t.Errorf("anonymous API: %d", st)
	}
	// Wrong password: 401, on the form and on the API.
	b := c.browser()
	if st, body := c.do(b, "POST", "/login", url.Values{"user": {"oper"}, "password": {"nope"}}, nil); st != http.StatusUnauthorized || !strings.Contains(body, "Wrong") {
		t.Errorf("wrong password: %d %s", st, body)
	}
	if st, _ := c.do(anon, "GET", "/api/whoami", nil, map[string]string{"basic": "oper:nope"}); st != http.StatusUnauthorized {
		t.Errorf("wrong Basic password: %d", st)
	}
	if st, _ := c.do(anon, "GET", "/api/whoami", nil, map[string]string{"basic": "nobody:x"}); st != http.StatusUnauthorized {
		t.Errorf("unknown Basic user: %d", st)
	}
	// Signed in: the session is a Secure, HTTP-only cookie.
	nb := *b
	nb.CheckRedirect = anon.CheckRedirect
	res, err := nb.PostForm(c.srv.URL+"/login", url.Values{"user": {"oper"}, "password": {"oper-pass"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == webauth.CookieName {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v", cookie)
	}
	st, body := c.do(b, "GET", "/", nil, nil)
	var who struct {
		User webauth.User
		CSRF string
	}
	if json.Unmarshal([]byte(body), &who); st != 200 || who.User.Name != "oper" || who.User.Role != webauth.Operator || who.CSRF == "" {
		t.Fatalf("signed in: %d %s", st, body)
	}
	// CSRF: a state-changing request with the cookie needs the token.
	if st, _ := c.do(b, "POST", "/act", url.Values{}, nil); st != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d", st)
	}
	if st, _ := c.do(b, "POST", "/api/act", nil, map[string]string{webauth.CSRFHeader: "wrong"}); st != http.StatusForbidden {
		t.Errorf("API POST with a wrong CSRF token: %d", st)
	}
	if st, _ := c.do(b, "POST", "/act", url.Values{"csrf": {who.CSRF}}, map[string]string{"Origin": "https://evil.example"}); st != http.StatusForbidden {
		t.Errorf("cross-site POST with the token: %d", st)
	}
	if st, body := c.do(b, "POST", "/act", url.Values{"csrf": {who.CSRF}}, nil); st != 200 || body != "done" {
		t.Errorf("POST with the token: %d %s", st, body)
	}
	if st, _ := c.do(b, "POST", "/api/act", nil, map[string]string{webauth.CSRFHeader: who.CSRF}); st != 200 {
		t.Errorf("API POST with the token header: %d", st)
	}
	// Basic auth: no cookie, no token; viewers get 403.
	if st, body := c.do(anon, "POST", "/api/act", nil, map[string]string{"basic": "oper:oper-pass"}); st != 200 || body != "done" {
		t.Errorf("operator with Basic auth: %d %s", st, body)
	}
	if st, _ := c.do(anon, "POST", "/api/act", nil, map[string]string{"basic": "view:view-pass"}); st != http.StatusForbidden {
		t.Errorf("viewer with Basic auth: %d, want 403", st)
	}
	if st, _ := c.do(anon, "POST", "/api/act", nil, map[string]string{"basic": "oper:oper-pass", "Sec-Fetch-Site": "cross-site"}); st != http.StatusForbidden {
		t.Errorf("cross-site Basic POST: %d", st)
	}
	// Sign out: the session is gone, on the server too — the old cookie,
	// sent again, opens nothing.
	old := c.cookies(b)
	if st, _ := c.do(b, "POST", "/logout", url.Values{"csrf": {who.CSRF}}, nil); st != 200 {
		t.Errorf("logout: %d", st)
	}
	if st, _ := c.do(&nb, "GET", "/", nil, nil); st != http.StatusSeeOther {
		t.Errorf("after logout: %d, want the login redirect", st)
	}
	if st, _ := c.do(c.withCookies(old), "GET", "/", nil, nil); st != http.StatusSeeOther {
		t.Errorf("the signed-out session's cookie sent again: %d, want the login redirect", st)
	}
}

// cookies are the cookies b holds for the console.
func (c *console) cookies(b *http.Client) []*http.Cookie {
	u, _ := url.Parse(c.srv.URL)
	return b.Jar.Cookies(u)
}

// withCookies is a browser holding cs, not following redirects.
func (c *console) withCookies(cs []*http.Cookie) *http.Client {
	b := c.browser()
	u, _ := url.Parse(c.srv.URL)
	b.Jar.SetCookies(u, cs)
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b
}

func TestOIDC(t *testing.T) {
	idp := oidctest.New(t, "console", "client-secret")
	c := newConsole(t, func(base string) webauth.Config {
		return webauth.Config{URL: base, OIDC: webauth.OIDCConfig{Issuer: idp.URL, ClientID: "console", ClientSecret: "client-secret",
			Operators: []string{"pipeline-operators", "boss@cowjacket.example"}}}
	})
	for _, tc := range []struct {
		name   string
		claims oidctest.Claims
		role   string
	}{
		{"operator by group", oidctest.Claims{Subject: "1", Email: "ann@cowjacket.example", Groups: []string{"staff", "pipeline-operators"}}, webauth.Operator},
		{"operator by e-mail", oidctest.Claims{Subject: "2", Email: "Boss@cowjacket.example"}, webauth.Operator},
		{"viewer", oidctest.Claims{Subject: "3", Email: "bob@cowjacket.example", Groups: []string{"staff"}}, webauth.Viewer},
		// An operator's address the provider has not verified names nobody.
		{"unverified operator e-mail", oidctest.Claims{Subject: "4", Email: "boss@cowjacket.example", EmailUnverified: true}, webauth.Viewer},
		// Nor one it does not say it verified; a group still counts.
		{"operator e-mail, email_verified absent", oidctest.Claims{Subject: "5", Email: "boss@cowjacket.example", NoEmailVerified: true}, webauth.Viewer},
		{"operator group, email_verified absent", oidctest.Claims{Subject: "6", Email: "ann@cowjacket.example", Groups: []string{"pipeline-operators"}, NoEmailVerified: true}, webauth.Operator},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp.SignInAs(tc.claims)
			b := c.browser()
			st, body := c.do(b, "GET", "/auth/oidc?next=/", nil, nil)
			var who struct {
				User webauth.User
				CSRF string
			}
			wantEmail := tc.claims.Email
			if tc.claims.EmailUnverified || tc.claims.NoEmailVerified {
				wantEmail = ""
			}
			// An address the provider does not vouch for names nobody, not
			// even the user (the audit trail says who by the name).
			if json.Unmarshal([]byte(body), &who); st != 200 || who.User.Email != wantEmail || who.User.Role != tc.role || who.User.Via != "oidc" ||
				wantEmail == "" && (who.User.Name == tc.claims.Email || !strings.Contains(who.User.Name, tc.claims.Subject)) {
				t.Fatalf("after the provider: %d %s", st, body)
			}
			demoted := strings.Contains(c.logs.String(), "does not say email_verified: true") && strings.Contains(c.logs.String(), "email="+tc.claims.Email)
			unvouched := tc.claims.NoEmailVerified || tc.claims.EmailUnverified
			if want := unvouched && tc.role == webauth.Viewer && strings.EqualFold(tc.claims.Email, "boss@cowjacket.example"); demoted != want {
				t.Errorf("the demotion warning logged: %v, want %v:\n%s", demoted, want, c.logs.String())
			}
			c.logs.Reset()
			// The API accepts the session too; replaying needs the role.
			want := map[string]int{webauth.Operator: 200, webauth.Viewer: 403}[tc.role]
			if st, _ := c.do(b, "POST", "/api/act", nil, map[string]string{webauth.CSRFHeader: who.CSRF}); st != want {
				t.Errorf("act as %s: %d, want %d", tc.role, st, want)
			}
			before, old := idp.LogoutCount(), c.cookies(b)
			st, body = c.do(b, "POST", "/logout", url.Values{"csrf": {who.CSRF}}, nil)
			if st != 200 || !strings.Contains(body, "login page") || idp.LogoutCount() != before+1 {
				t.Errorf("logout: %d %q, provider logouts %d", st, body, idp.LogoutCount())
			}
			nb := *b
			nb.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			if st, _ := c.do(&nb, "GET", "/", nil, nil); st != http.StatusSeeOther {
				t.Errorf("after logout: %d", st)
			}
			if st, _ := c.do(c.withCookies(old), "GET", "/", nil, nil); st != http.StatusSeeOther {
				t.Errorf("the signed-out session's cookie sent again: %d", st)
			}
		})
	}
	// A callback that this browser did not start is refused.
	b := c.browser()
	if st, body := c.do(b, "GET", "/auth/callback?code=x&state=forged", nil, nil); st != http.StatusBadRequest || !regexp.MustCompile(`state`).MatchString(body) {
		t.Errorf("forged callback: %d %s", st, body)
	}
}
