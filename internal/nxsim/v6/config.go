package v6

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dexbridge/dexbridge/internal/nxsim"
	"github.com/dexbridge/dexbridge/internal/nxsim/fleet"
)

// Config configures the V6 emulator: one Portal and Engines over one fleet.
type Config struct {
	// Engines is the number of Engines, 1 to 16; default 2.
	Engines int
	// Host is the address every server listens on and the Portal lists; default
	// 127.0.0.1.
	Host string
	// PortalPort is the Portal's port; 0 picks a free one. EnginePorts, when set,
	// holds one port per Engine (0 picks a free one).
	PortalPort  int
	EnginePorts []int
	FleetSize   int    // devices, fleet.MinSize to fleet.MaxSize; default 1000
	Seed        int64  // fleet seed; default 1
	Prefix      string // device name prefix; default "V6"
	// Scenarios adds nxsim's named scenario devices (PC-HEALTHY, ...); default true.
	Scenarios *bool
	// Username and Password are the Basic credentials of the Portal and the
	// Engines; default "nxsim" and "nxsim-secret".
	Username, Password string
	// MovedShare is the share of devices that moved between two Engines (listed by
	// both, the newer one authoritative); at least one device moves. Default 0.02.
	MovedShare float64
	// QueryTimeout bounds one NXQL query; default 5 s.
	QueryTimeout time.Duration
	Executions   nxsim.ExecutionTiming
	Logger       *slog.Logger
	Clock        func() time.Time
}

func (cfg Config) withDefaults() Config {
	if cfg.Engines == 0 {
		cfg.Engines = 2
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.FleetSize == 0 {
		cfg.FleetSize = 1000
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "V6"
	}
	if cfg.Scenarios == nil {
		yes := true
		cfg.Scenarios = &yes
	}
	if cfg.Username == "" && cfg.Password == "" {
		cfg.Username, cfg.Password = "nxsim", "nxsim-secret"
	}
	if cfg.MovedShare == 0 {
		cfg.MovedShare = 0.02
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 5 * time.Second
	}
	cfg.Executions = cfg.Executions.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return cfg
}

// Validate reports the first bad setting of a defaulted config, naming it.
func (cfg Config) Validate() error {
	switch {
	case cfg.Engines < 1 || cfg.Engines > 16:
		return fmt.Errorf("engines %d: want 1 to 16", cfg.Engines)
	case len(cfg.EnginePorts) != 0 && len(cfg.EnginePorts) != cfg.Engines:
		return fmt.Errorf("engine_ports: %d ports for %d engines", len(cfg.EnginePorts), cfg.Engines)
	case cfg.FleetSize < fleet.MinSize || cfg.FleetSize > fleet.MaxSize:
		return fmt.Errorf("fleet_size %d: want %d to %d", cfg.FleetSize, fleet.MinSize, fleet.MaxSize)
	case cfg.Username == "" || cfg.Password == "":
		return errors.New("username and password: want both")
	case cfg.MovedShare < 0 || cfg.MovedShare > 0.5:
		return fmt.Errorf("moved_share %v: want 0 to 0.5", cfg.MovedShare)
	}
	return nil
}
