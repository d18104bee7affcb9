package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/schemas"
)

// Load reads the YAML file at path (none when path is empty), applies the environment
// and validates the result.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		if err := decodeFile(raw, &cfg); err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, v := range Variables() {
		s := getenv(v.Name)
		if s == "" {
			continue
		}
		if err := v.set(&cfg, s); err != nil {
			return Config{}, fmt.Errorf("config: %w", &Error{Key: v.Key, Env: v.Name, Reason: err.Error()})
		}
	}
	if cfg.Admin.Password == "" && cfg.Admin.PasswordFile != "" {
		raw, err := os.ReadFile(cfg.Admin.PasswordFile)
		if err != nil {
			return Config{}, fmt.Errorf("config: %w", &Error{Key: "admin.password_file", Reason: err.Error()})
		}
		cfg.Admin.Password = Secret(strings.TrimSpace(string(raw)))
	}
	if err := cfg.NATS.loadSecrets(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := cfg.loadProactiveSecret(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	for i := range cfg.Instances {
		if err := loadCredentials(&cfg.Instances[i], getenv); err != nil {
			return Config{}, fmt.Errorf("config: %w", &Error{Key: fmt.Sprintf("instances[%d].credentials_file", i), Reason: err.Error()})
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// decodeFile decodes the configuration file over the defaults; an empty file keeps them.
func decodeFile(raw []byte, cfg *Config) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return DecodeStrict(raw, "config/dexbridge.json", cfg)
}

// DecodeStrict decodes a YAML document into `into` after checking it against an
// embedded schema, so that unknown keys and wrong types are refused with their path
// (as *Error values), not silently ignored. Every file format dexbridge reads goes
// through it.
func DecodeStrict(raw []byte, schemaPath string, into any) error {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if err := ValidateDocument(schemaPath, doc); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	return dec.Decode(into)
}

// ValidateDocument checks a YAML-decoded document against an embedded schema and
// reports the first violations as *Error values naming the key.
func ValidateDocument(schemaPath string, doc any) error {
	s, err := schemas.Load(schemaPath)
	if err != nil {
		return err
	}
	j, err := toJSON(doc)
	if err != nil {
		return err
	}
	err = s.Validate(j)
	var vs schemas.Violations
	if errors.As(err, &vs) {
		errs := make([]error, 0, len(vs))
		for _, v := range vs {
			errs = append(errs, &Error{Key: KeyOf(v.Path), Reason: v.Message})
		}
		return errors.Join(errs...)
	}
	return err
}

// toJSON turns a YAML-decoded value into what encoding/json would have produced.
func toJSON(doc any) (any, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("not representable as JSON: %w", err)
	}
	var out any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	err = d.Decode(&out)
	return out, err
}

// KeyOf turns a JSON pointer ("/instances/0/name") into a key ("instances[0].name").
func KeyOf(pointer string) string {
	if pointer == "" {
		return "(document)"
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// CredentialEnv is the variable holding an instance's credential part.
func CredentialEnv(instance, part string) string {
	var b strings.Builder
	b.WriteString("NEXTHINK_")
	for _, r := range strings.ToUpper(instance) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteString("_" + part)
	return b.String()
}

// loadCredentials fills an instance's credentials from its variables, else its file:
// client_id and client_secret for Infinity, username and password for V6.
func loadCredentials(in *Instance, getenv func(string) string) error {
	v6 := in.IsV6()
	a, b := "CLIENT_ID", "CLIENT_SECRET"
	if v6 {
		a, b = "USERNAME", "PASSWORD"
	}
	id, secret := getenv(CredentialEnv(in.Name, a)), getenv(CredentialEnv(in.Name, b))
	if (id == "" || secret == "") && in.CredentialsFile != "" {
		raw, err := os.ReadFile(in.CredentialsFile)
		if err != nil {
			return err
		}
		var f struct {
			ClientID     string `yaml:"client_id"`
			ClientSecret string `yaml:"client_secret"`
			Username     string `yaml:"username"`
			Password     string `yaml:"password"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("want client_id and client_secret (V6: username and password): %w", err)
		}
		id, secret = f.ClientID, f.ClientSecret
		if v6 {
			id, secret = f.Username, f.Password
		}
	}
	if v6 {
		in.Username, in.Password = id, Secret(secret)
	} else {
		in.ClientID, in.ClientSecret = id, Secret(secret)
	}
	return nil
}
