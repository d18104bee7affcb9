package bench

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats-server/v2/server"
)

// natsNodeMain is `dexbench nats-node -c <file>`: one nats-server, configured by a
// nats-server configuration file, until SIGTERM. The cluster drill runs its nodes as
// processes of their own so that one can be killed with SIGKILL; building them from
// the nats-server package dexbridge embeds needs no other binary.
func natsNodeMain(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conf := fs.String("c", "", "nats-server configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *conf == "" {
		return errors.New("nats-node: -c names the configuration file")
	}
	opts, err := server.ProcessConfigFile(*conf)
	if err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	srv.ConfigureLogger()
	if err := server.Run(srv); err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	srv.WaitForShutdown()
	return nil
}
