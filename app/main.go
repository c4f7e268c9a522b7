// Command pingpong is the ping-pong service and its operator tools, in one binary.
//
// With no subcommand it runs the service; `pingpong --help` lists the subcommands and every
// setting. Exit codes: 0 success, 1 failure, 2 bad usage or configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pingpong/pingpong/app/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit code.
func run(ctx context.Context, args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "pingpong:", err)
	var cfgErr *config.Error
	var usage usageError
	if errors.As(err, &cfgErr) || errors.As(err, &usage) {
		return exitUsage
	}
	var exit exitError
	if errors.As(err, &exit) {
		return exit.code
	}
	return exitFailure
}

// usageError is a command line that cannot be run as written.
type usageError struct{ error }

// exitError asks for a particular exit code.
type exitError struct {
	error
	code int
}

// shared holds the settings every command takes: how to reach Kafka and how to log.
type shared struct {
	kafka   config.Kafka
	logging config.Logging
}

func newRootCommand() *cobra.Command {
	var common shared
	root := newServiceCommand(&common)
	common.kafka.AddFlags(root.PersistentFlags())
	common.logging.AddFlags(root.PersistentFlags())
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return config.ApplyEnv(cmd.Flags(), os.LookupEnv)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newTopicsCommand(&common),
		newVersionCommand(),
		newHealthcheckCommand(),
		newDLQCommand(&common), newPingCommand(&common),
	)
	return root
}
