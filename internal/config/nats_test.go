package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNATSSecurity: credentials come from the environment or from files named in the
// YAML, one kind at most; the embedded server takes what it can enforce, and
// secrets never print.
func TestNATSSecurity(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("from-file-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ext := "NATS_URL"
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(NATS) error
		err   string // part of the error; "" for none
	}{
		{"password from the environment", "", map[string]string{ext: "tls://nats:4222", "NATS_USER": "dex", "NATS_PASSWORD": "env-pass"},
			func(n NATS) error {
				return want(n.User == "dex" && n.Password.Reveal() == "env-pass", "user and password")
			}, ""},
		{"password from a file", "nats:\n  user: dex\n  password_file: " + passFile + "\n", map[string]string{ext: "nats://nats:4222"},
			func(n NATS) error {
				return want(n.Password.Reveal() == "from-file-pass", "the file's password, trimmed")
			}, ""},
		{"token and TLS", "nats:\n  tls: {ca_file: /ca.pem, cert_file: /c.pem, key_file: /k.pem}\n", map[string]string{ext: "tls://nats:4222", "NATS_TOKEN": "tok", "NATS_REPLICAS": "3"},
			func(n NATS) error {
				return want(n.Token.Reveal() == "tok" && n.Replicas == 3 && n.TLS.CAFile == "/ca.pem" && n.CredentialKind() == "token", "token, replicas 3, the CA")
			}, ""},
		{"a cluster", "", map[string]string{ext: "tls://n1:4222, tls://n2:4222,tls://n3:4222", "NATS_REPLICAS": "3"},
			func(n NATS) error { return want(n.Replicas == 3, "three replicas") }, ""},
		{"not a URL", "", map[string]string{ext: "nats://n1:4222,n2"}, nil, `"n2" is not`},
		{"replicas default", "", nil, func(n NATS) error { return want(n.Replicas == 1, "one replica") }, ""},
		{"two kinds", "", map[string]string{ext: "nats://n:4222", "NATS_TOKEN": "tok", "NATS_CREDS_FILE": "/x.creds"}, nil, "one NATS credential kind, got creds_file and token"},
		{"user without password", "", map[string]string{ext: "nats://n:4222", "NATS_USER": "dex"}, nil, "set both the user and the password"},
		{"missing password file", "nats:\n  user: dex\n  password_file: " + filepath.Join(dir, "none") + "\n", nil, nil, "nats.password_file"},
		{"certificate without key", "", map[string]string{ext: "nats://n:4222", "NATS_TLS_CERT_FILE": "/c.pem"}, nil, "set both the certificate and the key"},
		{"creds with the embedded server", "", map[string]string{"NATS_CREDS_FILE": "/x.creds"}, nil, "needs an operator-run NATS"},
		{"replicas on the embedded server", "", map[string]string{"NATS_REPLICAS": "3"}, nil, "the embedded server is one node"},
		{"replicas beyond JetStream's", "", map[string]string{ext: "nats://n:4222", "NATS_REPLICAS": "7"}, nil, "want 1 to 5"},
		{"client verification without a CA", "nats:\n  tls: {cert_file: /c.pem, key_file: /k.pem, verify_clients: true}\n", nil, nil, "needs nats.tls.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.yaml, tt.env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.check(cfg.NATS); err != nil {
				t.Error(err)
			}
			for _, out := range []string{fmt.Sprintf("%v", cfg.NATS), fmt.Sprintf("%+v", cfg.NATS), fmt.Sprintf("%#v", cfg.NATS)} {
				for _, secret := range []string{"env-pass", "from-file-pass", "tok}"} {
					if strings.Contains(out, secret) {
						t.Errorf("printed configuration shows a secret: %s", out)
					}
				}
			}
		})
	}
}

func want(ok bool, what string) error {
	if !ok {
		return fmt.Errorf("want %s", what)
	}
	return nil
}
