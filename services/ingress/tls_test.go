package ingress_test

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
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dexbridge/dexbridge/internal/logging"
	"github.com/dexbridge/dexbridge/services/ingress"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their paths
// and a pool that trusts the certificate.
func selfSigned(t *testing.T) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dexbridge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestHTTPSWithTLS12Minimum: with a certificate and key the ingress serves HTTPS
// only, refusing TLS 1.1 and plain HTTP.
func TestHTTPSWithTLS12Minimum(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	addr := serve(t, ingress.Options{
		Listen: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile,
		Log: logging.Discard(), ShutdownTimeout: 5 * time.Second,
	})
	get := func(scheme string, tc *tls.Config) (*http.Response, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		return c.Get(scheme + "://" + addr + "/healthz")
	}
	resp, err := get("https", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS: got %v %v, want 200", resp, err)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("negotiated %v, want TLS 1.2 or later", resp.TLS)
	}
	resp.Body.Close()
	if resp, err := get("https", &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		resp.Body.Close()
		t.Error("TLS 1.1: got an answer, want the handshake refused")
	}
	if resp, err := get("http", nil); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP to the HTTPS port: got 200")
		}
		resp.Body.Close()
	}
}
