package broker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/dexbridge/dexbridge/internal/broker"
	"github.com/dexbridge/dexbridge/internal/testenv"
)

// TestEmbeddedServerRequiresCredentials: an embedded server given a credential
// requires it of every process that joins; the wrong one is refused without the
// secret appearing in the error.
func TestEmbeddedServerRequiresCredentials(t *testing.T) {
	seed := writeSeed(t)
	other := writeSeed(t)
	tests := []struct {
		name        string
		auth, wrong broker.Auth
	}{
		{"user and password", broker.Auth{User: "dexbridge", Password: "s3cret-pass"}, broker.Auth{User: "dexbridge", Password: "guessed-pass"}},
		{"token", broker.Auth{Token: "s3cret-token"}, broker.Auth{Token: "guessed-token"}},
		{"nkey", broker.Auth{NKeySeedFile: seed}, broker.Auth{NKeySeedFile: other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			host, err := broker.Connect(ctx, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Auth: tt.auth})
			if err != nil {
				t.Fatal(err)
			}
			defer host.Close(ctx)
			for _, refused := range []broker.Auth{{}, tt.wrong} {
				b, err := broker.Connect(ctx, broker.Options{URL: host.ClientURL(), Auth: refused})
				if err == nil {
					b.Close(ctx)
					t.Fatalf("joined with %+v, want refused", refused.User)
				}
				for _, secret := range []string{tt.auth.Password, tt.auth.Token, refused.Password, refused.Token} {
					if secret != "" && strings.Contains(err.Error(), secret) {
						t.Errorf("error shows a secret: %v", err)
					}
				}
			}
			guest, err := broker.Connect(ctx, broker.Options{URL: host.ClientURL(), Auth: tt.auth})
			if err != nil {
				t.Fatalf("the right credential: %v", err)
			}
			defer guest.Close(ctx)
			if err := guest.Ready(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestEmbeddedServerTLS: with TLS and client verification, a process joins with the
// CA and a client certificate; without the CA, or without a certificate, it is
// refused.
func TestEmbeddedServerTLS(t *testing.T) {
	ctx := context.Background()
	c := testenv.Certs(t)
	host, err := broker.Connect(ctx, broker.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(),
		TLS:  broker.TLS{CAFile: c.CA, CertFile: c.ServerCert, KeyFile: c.ServerKey, VerifyClients: true},
		Auth: broker.Auth{Token: "tls-and-token"}})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	if err := host.Ready(); err != nil {
		t.Fatalf("the embedded server's own connection: %v", err)
	}
	url := strings.Replace(host.ClientURL(), "nats://", "tls://", 1)
	auth := broker.Auth{Token: "tls-and-token"}
	for name, tls := range map[string]broker.TLS{
		"no CA":          {CertFile: c.ClientCert, KeyFile: c.ClientKey},
		"no certificate": {CAFile: c.CA},
	} {
		if b, err := broker.Connect(ctx, broker.Options{URL: url, TLS: tls, Auth: auth}); err == nil {
			b.Close(ctx)
			t.Errorf("%s: joined, want refused", name)
		}
	}
	guest, err := broker.Connect(ctx, broker.Options{URL: url, Auth: auth,
		TLS: broker.TLS{CAFile: c.CA, CertFile: c.ClientCert, KeyFile: c.ClientKey}})
	if err != nil {
		t.Fatalf("CA and client certificate: %v", err)
	}
	defer guest.Close(ctx)
	if !guest.Conn.TLSRequired() {
		t.Error("want the connection encrypted")
	}
	if _, err := guest.Conn.TLSConnectionState(); err != nil {
		t.Errorf("tls state: %v", err)
	}
}

func writeSeed(t *testing.T) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
