package store_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dexbridge/dexbridge/internal/store"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// pki writes a CA and a client certificate and key it signed, as PEM files in dir.
type pki struct {
	caFile     string
	certFile   string
	keyFile    string
	clientCert *x509.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dexbridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dexbridge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pki{clientCert: client, caFile: write("root.crt", "CERTIFICATE", caDER),
		certFile: write("client.crt", "CERTIFICATE", der), keyFile: write("client.key", "EC PRIVATE KEY", keyDER)}
}

// TestTLSSettingsReachPgx parses a DATABASE_URL with TLS settings through the code
// path that opens the pool: pgx gets them untouched (server name checked against the
// given CA only, the client certificate presented, no plain-text fallback), beside
// the pool settings.
func TestTLSSettingsReachPgx(t *testing.T) {
	p := newPKI(t)
	q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {p.caFile}, "sslcert": {p.certFile}, "sslkey": {p.keyFile}}
	raw := "postgres://dexbridge:secret@db.example.com:5433/dexbridge?" + q.Encode()
	cfg, err := store.ParseConfig(raw, store.PoolSettings{MaxConns: 7, MinConns: 2, StatementTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.ConnConfig.TLSConfig
	if tc == nil {
		t.Fatal("no TLS configuration")
	}
	if tc.ServerName != "db.example.com" || tc.InsecureSkipVerify {
		t.Errorf("verify-full: got server name %q, skip verify %v; want the host checked", tc.ServerName, tc.InsecureSkipVerify)
	}
	if tc.RootCAs == nil {
		t.Fatal("sslrootcert: no root CAs")
	}
	if _, err := p.clientCert.Verify(x509.VerifyOptions{Roots: tc.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("sslrootcert: the pool does not trust the given CA: %v", err)
	}
	if len(tc.Certificates) != 1 || len(tc.Certificates[0].Certificate) == 0 ||
		!bytes.Equal(tc.Certificates[0].Certificate[0], p.clientCert.Raw) {
		t.Errorf("sslcert/sslkey: got %d client certificates, want the given one", len(tc.Certificates))
	}
	if len(cfg.ConnConfig.Fallbacks) != 0 {
		t.Errorf("verify-full: got %d fallbacks, want none (no plain text)", len(cfg.ConnConfig.Fallbacks))
	}
	if cfg.MaxConns != 7 || cfg.MinConns != 2 || cfg.ConnConfig.RuntimeParams["statement_timeout"] != "1500" {
		t.Errorf("pool settings: got max %d, min %d, statement_timeout %q; want 7, 2, 1500",
			cfg.MaxConns, cfg.MinConns, cfg.ConnConfig.RuntimeParams["statement_timeout"])
	}

	// Without settings, the URL's own pool settings hold.
	cfg, err = store.ParseConfig("postgres://h/db?sslmode=disable&pool_max_conns=9&pool_min_conns=3", store.PoolSettings{})
	if err != nil || cfg.MaxConns != 9 || cfg.MinConns != 3 || cfg.ConnConfig.TLSConfig != nil {
		t.Errorf("URL settings: got %v, %+v", err, cfg)
	}
	if _, err := store.ParseConfig("postgres://h/db?pool_max_conns=2", store.PoolSettings{MinConns: 5}); err == nil {
		t.Error("min above max: got no error")
	}
	if _, err := store.ParseConfig("postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=/nonexistent.crt", store.PoolSettings{}); err == nil ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a missing sslrootcert: got %v, want an error without the password", err)
	}
}

// TestTLSAgainstTheServer connects to the test server as DATABASE_URL says, then with
// sslmode=require (the connection is encrypted, as pg_stat_ssl shows, when the server
// has TLS on), then with sslmode=verify-full and a CA that did not sign the server's
// certificate: refused, with an error that says why.
func TestTLSAgainstTheServer(t *testing.T) {
	base, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	with := func(params map[string]string) string {
		u := *base
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	encrypted := func(raw string) (bool, error) {
		pool, err := store.Open(ctx, raw)
		if err != nil {
			return false, err
		}
		defer pool.Close()
		var ssl bool
		err = pool.QueryRow(ctx, `SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)`).Scan(&ssl)
		return ssl, err
	}
	if ssl, err := encrypted(with(map[string]string{"sslmode": "disable"})); err != nil || ssl {
		t.Fatalf("sslmode=disable: got encrypted %v, %v; want a plain connection", ssl, err)
	}
	ssl, err := encrypted(with(map[string]string{"sslmode": "require"}))
	switch {
	case err == nil && !ssl:
		t.Error("sslmode=require: got a plain connection")
	case err == nil:
		t.Log("sslmode=require: encrypted")
	case strings.Contains(err.Error(), "server refused TLS"):
		t.Logf("sslmode=require: the server has TLS off, and says so: %v", err)
	default:
		t.Errorf("sslmode=require: got %v", err)
	}
	p := newPKI(t)
	_, err = encrypted(with(map[string]string{"sslmode": "verify-full", "sslrootcert": p.caFile}))
	if err == nil {
		t.Fatal("verify-full with a CA that did not sign the server's certificate: connected")
	}
	msg := err.Error()
	if !strings.Contains(msg, "certificate") && !strings.Contains(msg, "server refused TLS") {
		t.Errorf("verify-full with the wrong CA: got %q, want it to name the certificate", msg)
	}
	t.Logf("verify-full with the wrong CA: %s", msg)
}

// TestStatementTimeout: the pool's statements are cut at the timeout.
func TestStatementTimeout(t *testing.T) {
	ctx := context.Background()
	pool, err := store.OpenWith(ctx, testenv.PostgresURL(t), store.PoolSettings{StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, `SELECT pg_sleep(2)`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Errorf("a statement past the timeout: got %v, want query_canceled (57014)", err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_sleep(0.01)`); err != nil {
		t.Errorf("a statement within the timeout: %v", err)
	}
}
