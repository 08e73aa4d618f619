// Package webauth signs people into the console: no anonymous access, two
// roles (viewers see, operators also replay), from an OIDC provider (real
// installs) or an htpasswd users file with bcrypt hashes (small installs;
// its users may also call the JSON API with HTTP Basic auth). Browser
// sessions are secure, HTTP-only cookies; every state-changing request made
// with one must carry the session's CSRF token.
package webauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cowjacket/formjira/internal/config"
)

// Config is where users come from.
type Config struct {
	UsersFile string   // CONSOLE_USERS_FILE
	Operators []string // CONSOLE_OPERATORS: users-file names who may replay
	OIDC      OIDCConfig
	// URL is the console's external base URL (CONSOLE_URL), for OIDC's
	// redirect.
	URL        string
	SessionTTL time.Duration // [12h]
}

// OIDCConfig is the CONSOLE_OIDC_* variables.
type OIDCConfig struct {
	Issuer, ClientID, ClientSecret string
	Operators                      []string // e-mails or groups
}

// CookieName is the session cookie's.
const CookieName = "console_session"

// CSRFHeader carries the token on API calls made from a signed-in page.
const CSRFHeader = "X-CSRF-Token"

// LoginData is what the login page shows.
type LoginData struct {
	Next     string
	Error    string
	Password bool // the users file is a source
	OIDC     bool
}

// Auth is the console's authentication.
type Auth struct {
	cfg      Config
	users    *Users
	oidc     *oidcSource
	sessions *sessions
	log      *slog.Logger
	urlHost  string // CONSOLE_URL's host: the Origin behind a proxy
	limit    *attempts
	// Login renders the login page (the console's template); status is
	// 200, or 401 after a wrong password.
	Login func(w http.ResponseWriter, r *http.Request, status int, d LoginData)
}

// New checks cfg and prepares the sources; an error names the variable.
// No source at all is an error: the console never serves anonymous users.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Auth, error) {
	if cfg.UsersFile == "" && cfg.OIDC.Issuer == "" {
		return nil, config.Errorf("CONSOLE_USERS_FILE", "no authentication source: set CONSOLE_USERS_FILE (htpasswd, bcrypt) or CONSOLE_OIDC_ISSUER; the console never serves anonymous users")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	a := &Auth{cfg: cfg, sessions: newSessions(cfg.SessionTTL), log: log, limit: newAttempts()}
	if u, err := url.Parse(cfg.URL); err == nil {
		a.urlHost = u.Host
	}
	if cfg.UsersFile != "" {
		u, err := LoadUsers(cfg.UsersFile)
		if err != nil {
			return nil, config.Errorf("CONSOLE_USERS_FILE", "%v", err)
		}
		for _, op := range cfg.Operators {
			if !u.Has(op) {
				return nil, config.Errorf("CONSOLE_OPERATORS", "%q is not a user of CONSOLE_USERS_FILE", op)
			}
		}
		a.users = u
	} else if len(cfg.Operators) > 0 {
		return nil, config.Errorf("CONSOLE_OPERATORS", "names users of CONSOLE_USERS_FILE, which is not set (with OIDC use CONSOLE_OIDC_OPERATORS)")
	}
	if cfg.OIDC.Issuer != "" {
		o, err := newOIDC(ctx, cfg.OIDC, cfg.URL)
		if err != nil {
			return nil, err
		}
		a.oidc = o
	}
	return a, nil
}

// Sources says which sign-ins are offered.
func (a *Auth) Sources() (password, oidc bool) { return a.users != nil, a.oidc != nil }

type ctxKey struct{}

type identity struct {
	user *User
	csrf string // "" for Basic auth: no cookie, no CSRF
}

// UserFrom is the signed-in user of a request that went through Pages or
// API.
func UserFrom(ctx context.Context) *User {
	id, _ := ctx.Value(ctxKey{}).(*identity)
	if id == nil {
		return nil
	}
	return id.user
}

// CSRFFrom is the session's CSRF token, for forms and scripts.
func CSRFFrom(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(*identity)
	if id == nil {
		return ""
	}
	return id.csrf
}

// Pages guards the HTML pages: a session is needed (else to the login
// page), and a state-changing request must carry the CSRF token.
func (a *Auth) Pages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss := a.session(r)
		if ss == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if !safeMethod(r.Method) && !a.csrfOK(r, ss) {
			http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &identity{&ss.user, ss.csrf})))
	})
}

// API guards /api/: a session (CSRF-checked as for pages) or HTTP Basic
// auth of a users-file user (no cookie, so no CSRF token; refused when a
// browser says it comes from another site).
func (a *Auth) API(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ss := a.session(r); ss != nil {
			if !safeMethod(r.Method) && !a.csrfOK(r, ss) {
				jsonError(w, http.StatusForbidden, "missing or wrong CSRF token (header "+CSRFHeader+")")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &identity{&ss.user, ss.csrf})))
			return
		}
		name, pass, ok := r.BasicAuth()
		if !ok {
			a.challenge(w, "sign in: a session, or HTTP Basic auth with a users-file user")
			return
		}
		done, allowed := a.limit.try(name, r.RemoteAddr)
		if !allowed {
			tooMany(w)
			jsonError(w, http.StatusTooManyRequests, "too many failed sign-ins; try again in a minute")
			return
		}
		ok = a.users != nil && a.users.Check(name, pass)
		done(ok)
		if !ok {
			a.log.Warn("console: wrong user name or password", "user", name, "via", "basic", "from", r.RemoteAddr)
			a.challenge(w, "wrong user name or password")
			return
		}
		if !safeMethod(r.Method) && a.crossSite(r) {
			jsonError(w, http.StatusForbidden, "a cross-site request with Basic auth is refused")
			return
		}
		u := a.userFromFile(name, "basic")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &identity{user: &u})))
	})
}

func tooMany(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(attemptsEvery/time.Second)))
}

func (a *Auth) challenge(w http.ResponseWriter, msg string) {
	if a.users != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="ticketer console", charset="UTF-8"`)
	}
	jsonError(w, http.StatusUnauthorized, msg)
}

func (a *Auth) userFromFile(name, via string) User {
	role := Viewer
	if slices.Contains(a.cfg.Operators, name) {
		role = Operator
	}
	return User{Name: name, Role: role, Via: via}
}

func (a *Auth) session(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	return a.sessions.get(c.Value)
}

func (a *Auth) csrfOK(r *http.Request, ss *session) bool {
	tok := r.Header.Get(CSRFHeader)
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(ss.csrf)) == 1 && !a.crossSite(r)
}

// crossSite: the browser says the request comes from another site. Its
// Sec-Fetch-Site settles it; without one (older browsers) the Origin must
// be this host — as the request names it, or CONSOLE_URL's, since a proxy
// may forward another Host (nginx's default is the upstream's).
func (a *Auth) crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return false
	case "", "none":
	default:
		return true
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host && u.Host != a.urlHost {
			return true
		}
	}
	return false
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Routes adds the sign-in and sign-out handlers to mux.
func (a *Auth) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.passwordLogin)
	mux.HandleFunc("POST /logout", a.logout)
	if a.oidc != nil {
		mux.HandleFunc("GET /auth/oidc", a.oidcStart)
		mux.HandleFunc("GET /auth/callback", a.oidcCallback)
	}
}

func (a *Auth) loginData(r *http.Request) LoginData {
	return LoginData{Next: localPath(r.FormValue("next")), Password: a.users != nil, OIDC: a.oidc != nil}
}

// localPath is next when it is a path of this site, else "/". Browsers
// read "\" as "/" and drop tabs and line breaks, so "/\evil.example" or
// "/<tab>/evil.example" would leave the site after sign-in.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') ||
		strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

func (a *Auth) loginPage(w http.ResponseWriter, r *http.Request) {
	a.Login(w, r, http.StatusOK, a.loginData(r))
}

func (a *Auth) passwordLogin(w http.ResponseWriter, r *http.Request) {
	d := a.loginData(r)
	if a.crossSite(r) {
		http.Error(w, "cross-site sign-in refused", http.StatusForbidden)
		return
	}
	name, pass := r.PostFormValue("user"), r.PostFormValue("password")
	done, allowed := a.limit.try(name, r.RemoteAddr)
	if !allowed {
		tooMany(w)
		d.Error = "Too many failed sign-ins; try again in a minute."
		a.Login(w, r, http.StatusTooManyRequests, d)
		return
	}
	ok := a.users != nil && a.users.Check(name, pass)
	done(ok)
	if !ok {
		a.log.Warn("console: wrong user name or password", "user", name, "via", "password", "from", r.RemoteAddr)
		d.Error = "Wrong user name or password."
		a.Login(w, r, http.StatusUnauthorized, d)
		return
	}
	u := a.userFromFile(name, "password")
	a.start(w, u, "")
	a.log.Info("console: signed in", "user", u.Name, "role", u.Role, "via", u.Via)
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// start opens a session and sets its cookie.
func (a *Auth) start(w http.ResponseWriter, u User, idToken string) {
	id, _ := a.sessions.create(u, idToken)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
		MaxAge: int(a.cfg.SessionTTL / time.Second)})
}

func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	ss := a.session(r)
	if ss == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !a.csrfOK(r, ss) {
		http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
		return
	}
	c, _ := r.Cookie(CookieName)
	a.sessions.delete(c.Value)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	a.log.Info("console: signed out", "user", ss.user.Name)
	if ss.user.Via == "oidc" && a.oidc != nil {
		if u := a.oidc.logoutURL(ss.idToken); u != "" {
			http.Redirect(w, r, u, http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// ErrForbidden is the answer to a viewer's replay.
var ErrForbidden = errors.New("operators only: your role is viewer")

// RequireOperator writes 403 unless the request's user is an operator.
func RequireOperator(w http.ResponseWriter, r *http.Request, asJSON bool) bool {
	if UserFrom(r.Context()).Operator() {
		return true
	}
	if asJSON {
		jsonError(w, http.StatusForbidden, ErrForbidden.Error())
	} else {
		http.Error(w, ErrForbidden.Error(), http.StatusForbidden)
	}
	return false
}

func (u User) String() string { return fmt.Sprintf("%s (%s)", u.Name, u.Role) }
