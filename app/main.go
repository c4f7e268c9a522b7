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
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pingpong/pingpong/app/config"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitInterrupted is the shell's code for a command stopped by Ctrl-C (128 + SIGINT).
	exitInterrupted = 130
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
	root.SetFlagErrorFunc(flagError) // inherited by every command
	root.Args = noSubcommand
	root.AddCommand(
		newTopicsCommand(&common),
		newVersionCommand(),
		newHealthcheckCommand(),
		newDLQCommand(&common), newPingCommand(&common),
	)
	argsAreUsage(root)
	// Flag help wrapped at 100 columns, so that no line runs to 200 characters.
	root.SetUsageTemplate(strings.ReplaceAll(root.UsageTemplate(), "FlagUsages ", "FlagUsagesWrapped 100 "))
	return root
}

// unknownFlag finds the flag named in pflag's "unknown flag: --count" and "unknown shorthand
// flag: 'c' in -c".
var unknownFlag = regexp.MustCompile(`^unknown (?:flag: --([^\s=]+)|shorthand flag: '(.)')`)

// flagError makes a wrong flag bad usage (exit code 2), and says which commands have a flag
// given to another, as `pingpong --count 3` for `pingpong ping --count 3`.
func flagError(cmd *cobra.Command, err error) error {
	m := unknownFlag.FindStringSubmatch(err.Error())
	if m == nil {
		return usageError{err}
	}
	var owners []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c != cmd && !c.Hidden {
			fs := c.LocalNonPersistentFlags()
			if (m[1] != "" && fs.Lookup(m[1]) != nil) || (m[2] != "" && fs.ShorthandLookup(m[2]) != nil) {
				owners = append(owners, "'"+c.CommandPath()+"'")
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(cmd.Root())
	if len(owners) == 0 {
		return usageError{err}
	}
	flag := "--" + m[1]
	if m[1] == "" {
		flag = "-" + m[2]
	}
	return usageError{fmt.Errorf("%w for '%s': %s is a flag of %s; put it after the command, as in '%s %s'",
		err, cmd.CommandPath(), flag, joinOr(owners), strings.Trim(owners[0], "'"), flag)}
}

// joinOr joins ["a", "b", "c"] as "a, b or c".
func joinOr(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// argsAreUsage makes wrong arguments bad usage (exit code 2) in cmd and every command under it,
// as wrong flags are.
func argsAreUsage(cmd *cobra.Command) {
	if args := cmd.Args; args != nil {
		cmd.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				var usage usageError
				if errors.As(err, &usage) {
					return err
				}
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		argsAreUsage(sub)
	}
}

// noSubcommand rejects an argument where a subcommand was expected, as bad usage (exit code 2),
// with cobra's suggestions: `pingpong pign` says "Did you mean this? ping".
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, which SuggestionsFor does not apply
	}
	if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(suggestions, "\n\t") + "\n"
	}
	msg += "\nRun '" + cmd.CommandPath() + " --help' for usage."
	return usageError{errors.New(msg)}
}

// commandGroup makes cmd, a command that only holds subcommands, print its help when run alone
// and reject anything else as bad usage. Without a RunE of its own, cobra would print the help
// and exit 0 for `pingpong dlq lsit` too.
func commandGroup(cmd *cobra.Command) *cobra.Command {
	cmd.Args = noSubcommand
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return cmd
}
