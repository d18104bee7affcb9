package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// NATS says where the message bus is and how dexbridge proves who it is to it.
// Secrets come only from the environment or from files: the YAML names files.
type NATS struct {
	URL           string `yaml:"url"`            // NATS_URL; empty starts an embedded server
	Listen        string `yaml:"listen"`         // embedded server's client address, for other processes
	SubjectPrefix string `yaml:"subject_prefix"` // NATS_SUBJECT_PREFIX
	// Replicas is the JetStream replica count of every stream dexbridge creates:
	// 1 on one machine, 3 on a cluster (NATS_REPLICAS).
	Replicas int     `yaml:"replicas"`
	TLS      NATSTLS `yaml:"tls"`
	// One credential kind at most. The embedded server, when given one, requires it
	// from every client (a creds file needs an operator-run NATS: it cannot be used
	// with the embedded server).
	CredsFile    string `yaml:"creds_file"`     // NATS_CREDS_FILE: a JWT and NKey seed, as nsc writes it
	NKeySeedFile string `yaml:"nkey_seed_file"` // NATS_NKEY_SEED_FILE
	User         string `yaml:"user"`           // NATS_USER, with the password
	PasswordFile string `yaml:"password_file"`
	Password     Secret `yaml:"-"` // NATS_PASSWORD
	TokenFile    string `yaml:"token_file"`
	Token        Secret `yaml:"-"` // NATS_TOKEN
}

// NATSTLS is TLS to NATS. Joining a server: CAFile verifies it, CertFile and KeyFile
// are the client certificate it may require. Running the embedded server: CertFile
// and KeyFile are its certificate, and with VerifyClients it requires client
// certificates signed by CAFile.
type NATSTLS struct {
	CAFile        string `yaml:"ca_file"`   // NATS_TLS_CA_FILE
	CertFile      string `yaml:"cert_file"` // NATS_TLS_CERT_FILE
	KeyFile       string `yaml:"key_file"`  // NATS_TLS_KEY_FILE
	VerifyClients bool   `yaml:"verify_clients"`
}

// Enabled reports whether any TLS setting is given.
func (t NATSTLS) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// CredentialKind names the credential given ("" for none).
func (n NATS) CredentialKind() string {
	kinds := n.credentialKinds()
	if len(kinds) == 0 {
		return ""
	}
	return kinds[0]
}

func (n NATS) credentialKinds() []string {
	var kinds []string
	if n.CredsFile != "" {
		kinds = append(kinds, "creds_file")
	}
	if n.NKeySeedFile != "" {
		kinds = append(kinds, "nkey_seed_file")
	}
	if n.User != "" || n.Password != "" {
		kinds = append(kinds, "user")
	}
	if n.Token != "" {
		kinds = append(kinds, "token")
	}
	return kinds
}

// loadSecrets reads the password and token files unless the environment gave them.
func (n *NATS) loadSecrets() error {
	for _, f := range []struct {
		key, path string
		into      *Secret
	}{{"nats.password_file", n.PasswordFile, &n.Password}, {"nats.token_file", n.TokenFile, &n.Token}} {
		if *f.into != "" || f.path == "" {
			continue
		}
		raw, err := os.ReadFile(f.path)
		if err != nil {
			return &Error{Key: f.key, Reason: err.Error()}
		}
		*f.into = Secret(strings.TrimSpace(string(raw)))
		if *f.into == "" {
			return &Error{Key: f.key, Reason: "the file is empty"}
		}
	}
	return nil
}

func (n NATS) validate() error {
	if n.URL != "" {
		// A cluster is a comma-separated list of its servers.
		for _, one := range strings.Split(n.URL, ",") {
			if u, err := url.Parse(strings.TrimSpace(one)); err != nil || u.Host == "" {
				return &Error{Key: "nats.url", Env: "NATS_URL", Reason: fmt.Sprintf("want nats://host:port or tls://host:port, comma-separated for a cluster; %q is not", one)}
			}
		}
	} else if _, _, err := net.SplitHostPort(n.Listen); err != nil {
		return &Error{Key: "nats.listen", Reason: fmt.Sprintf("want host:port, got %q", n.Listen)}
	}
	if !validToken(n.SubjectPrefix) {
		return &Error{Key: "nats.subject_prefix", Env: "NATS_SUBJECT_PREFIX", Reason: "want lowercase letters, digits, '_' or '-', dot-separated"}
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		return &Error{Key: "nats.replicas", Env: "NATS_REPLICAS", Reason: fmt.Sprintf("want 1 to 5 (JetStream's limit), got %d", n.Replicas)}
	}
	if kinds := n.credentialKinds(); len(kinds) > 1 {
		return &Error{Key: "nats", Reason: "give one NATS credential kind, got " + strings.Join(kinds, " and ")}
	}
	if (n.User == "") != (n.Password == "") {
		return &Error{Key: "nats.user", Env: "NATS_USER/NATS_PASSWORD", Reason: "set both the user and the password (or nats.password_file), or neither"}
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		return &Error{Key: "nats.tls", Env: "NATS_TLS_CERT_FILE/NATS_TLS_KEY_FILE", Reason: "set both the certificate and the key, or neither"}
	}
	if n.URL == "" {
		if n.CredsFile != "" {
			return &Error{Key: "nats.creds_file", Env: "NATS_CREDS_FILE", Reason: "a creds file needs an operator-run NATS (set nats.url); the embedded server takes an NKey seed, a user and password or a token"}
		}
		if n.TLS.Enabled() && n.TLS.CertFile == "" {
			return &Error{Key: "nats.tls", Reason: "the embedded server needs its certificate and key for TLS"}
		}
		if n.TLS.VerifyClients && n.TLS.CAFile == "" {
			return &Error{Key: "nats.tls.verify_clients", Reason: "needs nats.tls.ca_file, the CA client certificates are checked against"}
		}
		if n.Replicas != 1 {
			return &Error{Key: "nats.replicas", Env: "NATS_REPLICAS", Reason: "the embedded server is one node: replicas must be 1"}
		}
	}
	return nil
}
