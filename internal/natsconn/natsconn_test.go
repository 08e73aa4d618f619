package natsconn_test

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/cowjacket/formjira/internal/config"
	"github.com/cowjacket/formjira/internal/localnats"
	"github.com/cowjacket/formjira/internal/natsconn"
	"github.com/cowjacket/formjira/internal/testsupport"
)

const password = "n4ts-pa55word-value"

var quiet = slog.New(slog.DiscardHandler)

// load is natsconn.Load over env.
func load(env map[string]string) (natsconn.Config, error) {
	r := config.NewReader(func(k string) string { return env[k] }, natsconn.Vars)
	c := natsconn.Load(r)
	return c, r.Err()
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A bad file or a bad combination stops the configuration with one line
// naming the variable, never showing a secret.
func TestLoadRefusesBadSettings(t *testing.T) {
	ca := testsupport.NewCA(t, "nats")
	other := ca.Client(t, "other")
	client := ca.Client(t, "capture")
	seed := userSeed(t)
	notPEM := write(t, "ca.txt", "not a certificate\n")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing creds file", map[string]string{"NATS_CREDS": "/nonexistent/capture.creds"}, "NATS_CREDS: /nonexistent/capture.creds: no such file"},
		{"creds file without a JWT", map[string]string{"NATS_CREDS": write(t, "x.creds", "hello\n")}, "NATS_CREDS: "},
		{"creds file without a seed", map[string]string{"NATS_CREDS": write(t, "y.creds", credsFile(t, false))}, "NATS_CREDS: /"},
		{"nkey file without a seed", map[string]string{"NATS_NKEY": notPEM}, "NATS_NKEY: "},
		{"unreadable nkey", map[string]string{"NATS_NKEY": "/nonexistent/seed"}, "NATS_NKEY: /nonexistent/seed: no such file"},
		{"user without password", map[string]string{"NATS_USER": "capture"}, "NATS_PASSWORD: required with NATS_USER"},
		{"password without user", map[string]string{"NATS_PASSWORD": password}, "NATS_USER: required with NATS_PASSWORD"},
		{"two ways to authenticate", map[string]string{"NATS_NKEY": write(t, "seed", string(seed)), "NATS_TOKEN": password}, "NATS_TOKEN: set only one way to authenticate"},
		{"URL credentials and a user", map[string]string{"NATS_URL": "nats://u:" + password + "@h:4222", "NATS_USER": "u", "NATS_PASSWORD": password}, "NATS_USER: set only one way"},
		{"CA not PEM", map[string]string{"NATS_TLS_CA": notPEM}, "NATS_TLS_CA: " + notPEM + " holds no PEM certificate"},
		{"missing CA", map[string]string{"NATS_TLS_CA": "/nonexistent/ca.pem"}, "NATS_TLS_CA: /nonexistent/ca.pem: no such file"},
		{"cert without key", map[string]string{"NATS_TLS_CERT": client.CertFile}, "NATS_TLS_KEY: required with NATS_TLS_CERT"},
		{"key without cert", map[string]string{"NATS_TLS_KEY": client.KeyFile}, "NATS_TLS_CERT: required with NATS_TLS_KEY"},
		{"key of another certificate", map[string]string{"NATS_TLS_CERT": client.CertFile, "NATS_TLS_KEY": other.KeyFile}, "NATS_TLS_KEY: "},
		{"cert file not PEM", map[string]string{"NATS_TLS_CERT": notPEM, "NATS_TLS_KEY": client.KeyFile}, "NATS_TLS_CERT: "},
		{"bad scheme", map[string]string{"NATS_URL": "http://u:" + password + "@h:4222"}, `NATS_URL: server 1: scheme "http"`},
		{"not a URL", map[string]string{"NATS_URL": "nats://h:4222, ::" + password}, "NATS_URL: server 2 is not a URL"},
		{"password file and password", map[string]string{"NATS_USER": "u", "NATS_PASSWORD": password, "NATS_PASSWORD_FILE": notPEM}, "NATS_PASSWORD: set either"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.env)
			var ce *config.Error
			if err == nil || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want a config.Error starting %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), password) || strings.Contains(err.Error(), string(seed)) {
				t.Errorf("error spans lines or shows a secret: %q", err)
			}
		})
	}
	if _, err := load(map[string]string{"NATS_USER": "u", "NATS_PASSWORD_FILE": write(t, "pw", password+"\n")}); err != nil {
		t.Errorf("NATS_PASSWORD_FILE: %v", err)
	}
}

// tlsServer is a nats-server that requires TLS with client certificates
// of ca and knows the users of users (a nats-server authorization block).
func tlsServer(t *testing.T, ca *testsupport.CA, port int, users string) *localnats.Server {
	t.Helper()
	srv := ca.Server(t, "127.0.0.1")
	conf := fmt.Sprintf(`tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }
authorization { %s }
`, srv.CertFile, srv.KeyFile, ca.File, users)
	return startConf(t, conf, port)
}

func startConf(t *testing.T, conf string, port int) *localnats.Server {
	t.Helper()
	ns, err := localnats.Start(localnats.Options{ConfigFile: write(t, "nats-server.conf", conf), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

func userSeed(t *testing.T) []byte {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

func publicKey(t *testing.T, seed []byte) string {
	t.Helper()
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// Every way to authenticate works against a server that requires it, over
// mutual TLS; each refusal is one line naming the variable and saying what
// the server said.
func TestConnectAuthAndTLS(t *testing.T) {
	ca := testsupport.NewCA(t, "nats")
	client := ca.Client(t, "capture")
	seed := userSeed(t)
	ns := tlsServer(t, ca, 0, fmt.Sprintf(`users: [ {user: capture, password: %q}, {nkey: %q} ]`, password, publicKey(t, seed)))
	url := ns.URL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("URL %s: want tls://", url)
	}
	tlsEnv := map[string]string{"NATS_URL": url, "NATS_TLS_CA": ca.File, "NATS_TLS_CERT": client.CertFile, "NATS_TLS_KEY": client.KeyFile}
	with := func(extra map[string]string) map[string]string {
		out := maps.Clone(tlsEnv)
		maps.Copy(out, extra)
		return out
	}
	stranger := testsupport.NewCA(t, "stranger")
	strangerClient := stranger.Client(t, "capture")
	tests := []struct {
		name string
		env  map[string]string
		want string // "" = connects
	}{
		{"user and password", with(map[string]string{"NATS_USER": "capture", "NATS_PASSWORD": password}), ""},
		{"password from a file", with(map[string]string{"NATS_USER": "capture", "NATS_PASSWORD_FILE": write(t, "pw", password+"\n")}), ""},
		{"nkey", with(map[string]string{"NATS_NKEY": write(t, "seed", string(seed))}), ""},
		{"nats:// URL with NATS_TLS_CA still uses TLS", with(map[string]string{"NATS_URL": strings.Replace(url, "tls://", "nats://", 1), "NATS_USER": "capture", "NATS_PASSWORD": password}), ""},
		{"wrong password", with(map[string]string{"NATS_USER": "capture", "NATS_PASSWORD": "wrong-" + password}), "NATS_USER/NATS_PASSWORD: the NATS server refused the credentials: nats: Authorization Violation"},
		{"no credentials", with(nil), "NATS_CREDS: the NATS server requires credentials"},
		{"unknown nkey", with(map[string]string{"NATS_NKEY": write(t, "seed2", string(userSeed(t)))}), "NATS_NKEY: the NATS server refused the credentials"},
		{"CA not given", map[string]string{"NATS_URL": url, "NATS_USER": "capture", "NATS_PASSWORD": password}, "NATS_TLS_CA: the server's TLS certificate is signed by a CA this client does not trust"},
		{"other CA", with(map[string]string{"NATS_TLS_CA": stranger.File, "NATS_USER": "capture", "NATS_PASSWORD": password}), "NATS_TLS_CA: the server's TLS certificate is signed by a CA"},
		{"no client certificate", map[string]string{"NATS_URL": url, "NATS_TLS_CA": ca.File, "NATS_USER": "capture", "NATS_PASSWORD": password}, "NATS_TLS_CERT: the server refused the TLS handshake"},
		{"client certificate of another CA", with(map[string]string{"NATS_TLS_CERT": strangerClient.CertFile, "NATS_TLS_KEY": strangerClient.KeyFile, "NATS_USER": "capture", "NATS_PASSWORD": password}), "NATS_TLS_CERT: the server refused the TLS handshake"},
		{"host name not in the certificate", with(map[string]string{"NATS_URL": "tls://localhost:" + strconv.Itoa(ns.Port()), "NATS_USER": "capture", "NATS_PASSWORD": password}), "NATS_URL: the server's TLS certificate is not for this host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := natsconn.Connect(c, "test", quiet, nats.Timeout(2*time.Second))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer nc.Close()
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("connected, want %q", tt.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want one line starting %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

// Token and decentralized (.creds) authentication, each on the server
// setup it belongs to.
func TestConnectTokenAndCreds(t *testing.T) {
	t.Run("token", func(t *testing.T) {
		ns := startConf(t, fmt.Sprintf("authorization { token: %q }\n", password), 0)
		for _, tt := range []struct{ token, want string }{{password, ""}, {"not-" + password, "NATS_TOKEN: the NATS server refused the credentials"}} {
			c, err := load(map[string]string{"NATS_URL": ns.URL(), "NATS_TOKEN": tt.token})
			if err != nil {
				t.Fatal(err)
			}
			nc, err := natsconn.Connect(c, "test", quiet)
			checkConnect(t, nc, err, tt.want)
		}
	})
	t.Run("creds", func(t *testing.T) {
		op := operatorSetup(t)
		ns := startConf(t, op.conf, 0)
		for _, tt := range []struct{ creds, want string }{
			{op.creds, ""},
			{op.strangerCreds, "NATS_CREDS: the NATS server refused the credentials"},
		} {
			c, err := load(map[string]string{"NATS_URL": ns.URL(), "NATS_CREDS": tt.creds})
			if err != nil {
				t.Fatal(err)
			}
			nc, err := natsconn.Connect(c, "test", quiet)
			checkConnect(t, nc, err, tt.want)
		}
	})
}

func checkConnect(t *testing.T, nc *nats.Conn, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		nc.Close()
		return
	}
	if err == nil {
		nc.Close()
		t.Fatalf("connected, want %q", want)
	}
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), password) {
		t.Errorf("error %q, want %q without the secret", err, want)
	}
}

type operator struct{ conf, creds, strangerCreds string }

// operatorSetup is a decentralized (JWT) server configuration with one
// account and a user's .creds file, as nsc would make them, and the .creds
// of a user of an account the server does not know.
func operatorSetup(t *testing.T) operator {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	account := func(name string) (nkeys.KeyPair, string, string) {
		akp, _ := nkeys.CreateAccount()
		apub, _ := akp.PublicKey()
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		ajwt, err := ac.Encode(okp)
		if err != nil {
			t.Fatal(err)
		}
		return akp, apub, ajwt
	}
	// JetStream needs a system account in operator mode.
	_, syspub, sysjwt := account("SYS")
	oc := jwt.NewOperatorClaims(opub)
	oc.Name, oc.SystemAccount = "cowjacket", syspub
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	creds := func(akp nkeys.KeyPair, apub string) string {
		ukp, _ := nkeys.CreateUser()
		upub, _ := ukp.PublicKey()
		uc := jwt.NewUserClaims(upub)
		uc.Name, uc.IssuerAccount = "capture", apub
		ujwt, err := uc.Encode(akp)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := ukp.Seed()
		b, err := jwt.FormatUserConfig(ujwt, seed)
		if err != nil {
			t.Fatal(err)
		}
		return write(t, "user.creds", string(b))
	}
	akp, apub, ajwt := account("FORMS")
	skp, spub, _ := account("STRANGER") // never preloaded: unknown to the server
	return operator{
		conf: fmt.Sprintf("operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: { %s: %q, %s: %q }\n",
			write(t, "op.jwt", ojwt), syspub, apub, ajwt, syspub, sysjwt),
		creds:         creds(akp, apub),
		strangerCreds: creds(skp, spub),
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A service waits for a server that is not there yet; when the server
// comes up and refuses it (credentials, or a certificate of another CA),
// OnRefused is told in one line instead of the connection retrying
// silently for ever. A server that answers and refuses at once fails
// Connect itself.
func TestWaitingServiceLearnsOfARefusal(t *testing.T) {
	ca := testsupport.NewCA(t, "nats")
	client := ca.Client(t, "ticketer")
	users := fmt.Sprintf(`users: [ {user: ticketer, password: %q} ]`, password)
	for _, tt := range []struct {
		name     string
		password string
		serverCA *testsupport.CA
		want     string
	}{
		{"password changed on the server", "old-" + password, ca, "NATS_USER/NATS_PASSWORD: the NATS server refused the credentials"},
		{"server certificate of another CA", password, testsupport.NewCA(t, "other"), "NATS_TLS_CA: the server's TLS certificate is signed by a CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			c, err := load(map[string]string{
				"NATS_URL": "tls://127.0.0.1:" + strconv.Itoa(port), "NATS_USER": "ticketer", "NATS_PASSWORD": tt.password,
				"NATS_TLS_CA": ca.File, "NATS_TLS_CERT": client.CertFile, "NATS_TLS_KEY": client.KeyFile,
			})
			if err != nil {
				t.Fatal(err)
			}
			refused := make(chan error, 2)
			c.OnRefused = func(err error) { refused <- err }
			nc, err := natsconn.Connect(c, "test", quiet, natsconn.WaitForServer(quiet)...)
			if err != nil {
				t.Fatalf("connect with nothing listening: %v, want to wait in the background", err)
			}
			defer nc.Close()
			tlsServer(t, tt.serverCA, port, users)
			select {
			case err := <-refused:
				if !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), password) {
					t.Errorf("refusal %q, want %q", err, tt.want)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("no refusal reported; connection status %v, last error %v", nc.Status(), nc.LastError())
			}
			// Now that the server is up, a new Connect fails at once.
			begin := time.Now()
			if _, err := natsconn.Connect(c, "test", quiet, natsconn.WaitForServer(quiet)...); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("connect to a refusing server: %v, want %q", err, tt.want)
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("refusal took %v", d)
			}
		})
	}
}

// credsFile is a .creds file's text, with or without its seed.
func credsFile(t *testing.T, withSeed bool) string {
	t.Helper()
	akp, _ := nkeys.CreateAccount()
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := ukp.Seed()
	b, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	if withSeed {
		return string(b)
	}
	s := string(b)
	return s[:strings.Index(s, "************************* IMPORTANT")]
}
