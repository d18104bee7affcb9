package nxsim

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// Permissions a credential can hold.
const (
	PermNQL           = "nql"
	PermRemoteActions = "remote_actions"
)

// Config configures an nxsim server. The zero value, after defaults, is a server on
// 127.0.0.1:8091 with the default tenants (DefaultTenants).
type Config struct {
	Addr        string         // listen address for Start; "127.0.0.1:0" picks a free port
	Tenants     []TenantConfig // default DefaultTenants(FleetSize, Seed)
	FleetSize   int            // devices of a tenant that does not set Size; default 1000
	Seed        int64          // fleet seed of the first tenant (others add their index); default 1
	TopicsDir   string         // saved queries from <TopicsDir>/*.yaml; default "topics"
	QueriesFile string         // more saved queries; default "config/queries.yaml"
	// Queries are saved queries added after the files (tests), by id.
	Queries      map[string]string
	TokenTTL     time.Duration // access token lifetime; default 900 s
	Latency      time.Duration // fixed latency added to every Nexthink API call; default 0
	QueryTimeout time.Duration // execute gives up (500) after this; default 5 s
	Executions   ExecutionTiming
	ExportDelay  time.Duration // minimum time an export spends in SUBMITTED and in IN_PROGRESS; default 200 ms
	Logger       *slog.Logger  // default: JSON to stderr at info
	Clock        func() time.Time
}

// ExecutionTiming sets how fast remote-action executions move.
type ExecutionTiming struct {
	Pending time.Duration // time in pending before the device picks it up; default 1 s
	Running time.Duration // time in in_progress; default 3 s
	Tick    time.Duration // how often executions advance; default 25 ms
}

// WithDefaults fills the unset durations: 1 s pending, 3 s running, a 25 ms tick.
func (e ExecutionTiming) WithDefaults() ExecutionTiming {
	if e.Pending == 0 {
		e.Pending = time.Second
	}
	if e.Running == 0 {
		e.Running = 3 * time.Second
	}
	if e.Tick == 0 {
		e.Tick = 25 * time.Millisecond
	}
	return e
}

// TenantConfig is one emulated tenant (Nexthink instance).
type TenantConfig struct {
	Name        string       `yaml:"name"`      // path segment: /tenants/<name>
	Prefix      string       `yaml:"prefix"`    // device name prefix; default upper-case Name
	Size        int          `yaml:"size"`      // devices; default Config.FleetSize
	Seed        int64        `yaml:"seed"`      // default Config.Seed + index
	Scenarios   *bool        `yaml:"scenarios"` // named scenario devices; default: first tenant only
	TimeZone    string       `yaml:"time_zone"` // default Europe/Zurich
	Domain      string       `yaml:"domain"`    // user domain; default example.com
	Credentials []Credential `yaml:"credentials"`
}

// Credential is an API credential of a tenant.
type Credential struct {
	ClientID     string   `yaml:"client_id" json:"client_id"`
	ClientSecret string   `yaml:"client_secret" json:"-"`
	Permissions  []string `yaml:"permissions" json:"permissions"` // "nql", "remote_actions"
}

// DefaultCredentials returns the credentials a tenant gets when it lists none:
// "<name>-client" with both permissions, "<name>-nql" with NQL only and "<name>-ra"
// with remote actions only; each secret is the client id followed by "-secret".
func DefaultCredentials(name string) []Credential {
	return []Credential{
		{name + "-client", name + "-client-secret", []string{PermNQL, PermRemoteActions}},
		{name + "-nql", name + "-nql-secret", []string{PermNQL}},
		{name + "-ra", name + "-ra-secret", []string{PermRemoteActions}},
	}
}

// DefaultTenants returns "eu" (size devices, the scenario devices, prefix EU) and "us"
// (a tenth of size, at least 10, prefix US).
func DefaultTenants(size int, seed int64) []TenantConfig {
	yes := true
	return []TenantConfig{
		{Name: "eu", Size: size, Seed: seed, Scenarios: &yes},
		{Name: "us", Size: max(fleet.MinSize, size/10), Seed: seed + 1},
	}
}

var tenantNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// withDefaults returns cfg with every default filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8091"
	}
	if cfg.FleetSize == 0 {
		cfg.FleetSize = 1000
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.TopicsDir == "" {
		cfg.TopicsDir = "topics"
	}
	if cfg.QueriesFile == "" {
		cfg.QueriesFile = "config/queries.yaml"
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 900 * time.Second
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 5 * time.Second
	}
	cfg.Executions = cfg.Executions.WithDefaults()
	if cfg.ExportDelay == 0 {
		cfg.ExportDelay = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if len(cfg.Tenants) == 0 {
		cfg.Tenants = DefaultTenants(cfg.FleetSize, cfg.Seed)
	}
	tenants := make([]TenantConfig, len(cfg.Tenants))
	for k, t := range cfg.Tenants {
		if t.Prefix == "" {
			t.Prefix = strings.ToUpper(t.Name)
		}
		if t.Size == 0 {
			t.Size = cfg.FleetSize
		}
		if t.Seed == 0 {
			t.Seed = cfg.Seed + int64(k)
		}
		if t.Scenarios == nil {
			first := k == 0
			t.Scenarios = &first
		}
		if t.TimeZone == "" {
			t.TimeZone = "Europe/Zurich"
		}
		if t.Domain == "" {
			t.Domain = "example.com"
		}
		if len(t.Credentials) == 0 {
			t.Credentials = DefaultCredentials(t.Name)
		}
		tenants[k] = t
	}
	cfg.Tenants = tenants
	return cfg
}

// Validate reports the first bad setting of a defaulted config, naming it.
func (cfg Config) Validate() error {
	if len(cfg.Tenants) == 0 {
		return errors.New("tenants: want at least one")
	}
	names, prefixes, clients := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for k, t := range cfg.Tenants {
		key := fmt.Sprintf("tenants[%d]", k)
		if !tenantNameRE.MatchString(t.Name) {
			return fmt.Errorf("%s.name %q: want lowercase letters, digits and '-'", key, t.Name)
		}
		if names[t.Name] {
			return fmt.Errorf("%s.name %q: duplicate", key, t.Name)
		}
		names[t.Name] = true
		p := strings.ToUpper(t.Prefix)
		if prefixes[p] {
			return fmt.Errorf("%s.prefix %q: another tenant uses it, device names would collide", key, t.Prefix)
		}
		prefixes[p] = true
		if strings.HasPrefix(p, "PC-") || strings.HasPrefix(p, "MAC-") || p == "PC" || p == "MAC" {
			return fmt.Errorf("%s.prefix %q: reserved for the scenario devices", key, t.Prefix)
		}
		if t.Size < fleet.MinSize || t.Size > fleet.MaxSize {
			return fmt.Errorf("%s.size %d: want %d to %d", key, t.Size, fleet.MinSize, fleet.MaxSize)
		}
		if _, err := time.LoadLocation(t.TimeZone); err != nil {
			return fmt.Errorf("%s.time_zone %q: %w", key, t.TimeZone, err)
		}
		for j, c := range t.Credentials {
			ckey := fmt.Sprintf("%s.credentials[%d]", key, j)
			if c.ClientID == "" || c.ClientSecret == "" {
				return fmt.Errorf("%s: want client_id and client_secret", ckey)
			}
			if clients[t.Name+"/"+c.ClientID] {
				return fmt.Errorf("%s.client_id %q: duplicate", ckey, c.ClientID)
			}
			clients[t.Name+"/"+c.ClientID] = true
			for _, p := range c.Permissions {
				if p != PermNQL && p != PermRemoteActions {
					return fmt.Errorf("%s.permissions: unknown permission %q (want %q or %q)", ckey, p, PermNQL, PermRemoteActions)
				}
			}
		}
	}
	if cfg.TokenTTL < time.Second {
		return fmt.Errorf("token_ttl %s: want at least 1s", cfg.TokenTTL)
	}
	return nil
}

// tenantsFile is the YAML shape of a tenants file.
type tenantsFile struct {
	Tenants []TenantConfig `yaml:"tenants"`
}

// LoadTenants reads a YAML tenants file:
//
//	tenants:
//	  - name: eu
//	    size: 5000
//	    credentials:
//	      - {client_id: eu-client, client_secret: s3cret, permissions: [nql, remote_actions]}
//	  - name: us
//	    prefix: US
func LoadTenants(path string) ([]TenantConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tenants file: %w", err)
	}
	var tf tenantsFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("tenants file %s: %w", path, err)
	}
	if len(tf.Tenants) == 0 {
		return nil, fmt.Errorf("tenants file %s: no tenants", path)
	}
	return tf.Tenants, nil
}
