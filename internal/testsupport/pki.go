package testsupport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority a test makes up, to issue the server and
// client certificates of TLS tests (crypto/x509, nothing installed).
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	PEM  []byte
	File string // the certificate, PEM, in a test directory
	dir  string
}

// KeyPair is an issued certificate and its key, as PEM and as files.
type KeyPair struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
	TLS               tls.Certificate
}

// NewCA makes a CA called name, its files in a test directory.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	ca, err := MakeCA(tb.TempDir(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// Server issues a server certificate for hosts (IP addresses or DNS names).
func (ca *CA) Server(tb testing.TB, hosts ...string) KeyPair {
	tb.Helper()
	kp, err := ca.MakeServer(hosts...)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// Client issues a client certificate whose common name is cn (PostgreSQL
// maps it to the role of that name).
func (ca *CA) Client(tb testing.TB, cn string) KeyPair {
	tb.Helper()
	kp, err := ca.MakeClient(cn)
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// MakeCA is NewCA outside a test (a TestMain), its files in dir.
func MakeCA(dir, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"cowjacket tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, key: key, PEM: pemOf("CERTIFICATE", der), dir: dir}
	ca.File, err = ca.write(name+"-ca.pem", ca.PEM)
	return ca, err
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// MakeServer is Server outside a test.
func (ca *CA) MakeServer(hosts ...string) (KeyPair, error) {
	tmpl := template(hosts[0], x509.ExtKeyUsageServerAuth)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl)
}

// MakeClient is Client outside a test.
func (ca *CA) MakeClient(cn string) (KeyPair, error) {
	return ca.issue(template(cn, x509.ExtKeyUsageClientAuth))
}

func template(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
}

func (ca *CA) issue(tmpl *x509.Certificate) (KeyPair, error) {
	var kp KeyPair
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return kp, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return kp, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return kp, err
	}
	kp.CertPEM, kp.KeyPEM = pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", keyDER)
	name := tmpl.Subject.CommonName + "-" + tmpl.SerialNumber.Text(16)
	if kp.CertFile, err = ca.write(name+".pem", kp.CertPEM); err != nil {
		return kp, err
	}
	if kp.KeyFile, err = ca.write(name+".key", kp.KeyPEM); err != nil {
		return kp, err
	}
	kp.TLS, err = tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	return kp, err
}

func (ca *CA) write(name string, b []byte) (string, error) {
	p := filepath.Join(ca.dir, name)
	return p, os.WriteFile(p, b, 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
