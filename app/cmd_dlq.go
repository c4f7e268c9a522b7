package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/term"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/dlq"
	"github.com/pingpong/pingpong/app/logging"
)

// devBroker is where the operator tools look for Kafka when KAFKA_BROKERS is unset: the embedded
// broker of `go run ./app`. A variable only so that the tests can build a binary that looks at a
// port of their own (-ldflags "-X main.devBroker=..."), never at a developer's 9092.
var devBroker = "127.0.0.1:9092"

// toolKafka is the shared Kafka settings as the operator tools use them: checked, and pointed at
// the embedded development broker when KAFKA_BROKERS is unset; and the client options that send
// franz-go's own logs to stderr at LOG_LEVEL=debug.
func toolKafka(common *shared) (config.Kafka, []kgo.Opt, error) {
	if err := common.kafka.Validate(); err != nil {
		return config.Kafka{}, nil, err
	}
	logger, err := logging.New(common.logging, os.Stderr)
	if err != nil {
		return config.Kafka{}, nil, err
	}
	k := common.kafka
	if len(k.BrokerList()) == 0 {
		k.Brokers = devBroker
	}
	return k, []kgo.Opt{kgo.WithLogger(logging.Kgo(logger))}, nil
}

// unsetBrokersError says, of a connection refused at devBroker because KAFKA_BROKERS is unset,
// that the address is only the default and how to get a broker there; other errors are returned
// as they are.
func unsetBrokersError(common *shared, err error) error {
	var refused *net.OpError
	if len(common.kafka.BrokerList()) > 0 || !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &refused) {
		return err
	}
	return fmt.Errorf("no broker listens at %s, the default when KAFKA_BROKERS is unset: start the service with `go run ./app` (its embedded broker listens there), or set KAFKA_BROKERS to your cluster's brokers: %w", devBroker, refused)
}

// openQueue opens the poison queue with the shared settings.
func openQueue(ctx context.Context, common *shared) (*dlq.Queue, error) {
	k, opts, err := toolKafka(common)
	if err != nil {
		return nil, err
	}
	q, err := dlq.Open(ctx, k, opts...)
	return q, unsetBrokersError(common, err)
}

func newDLQCommand(common *shared) *cobra.Command {
	cmd := commandGroup(&cobra.Command{
		Use:   "dlq",
		Short: "Inspect and replay the poison queue, <prefix>.failed",
		Long: `Inspect and replay the poison queue, <prefix>.failed: every request the service did not
answer with a pong, with headers that say why (docs/poison-queue.md).

These commands read partitions directly, never in a consumer group: they commit no offsets and
move nobody's. They take the service's Kafka settings (KAFKA_BROKERS, TOPIC_PREFIX, KAFKA_TLS_*,
KAFKA_SASL_*); with KAFKA_BROKERS unset they use ` + devBroker + `, the embedded broker of
'go run ./app'. Times are printed in UTC.

Exit codes: 0 done, 1 failure (Kafka unreachable within KAFKA_TIMEOUT, a replay not
acknowledged), 2 bad usage or configuration, or a replay not confirmed.`,
	})
	cmd.AddCommand(
		newDLQListCommand(common),
		newDLQShowCommand(common),
		newDLQStatsCommand(common),
		newDLQReplayCommand(common),
	)
	return cmd
}

// selectionFlags are the flags that select poison records, shared by list, stats and replay.
type selectionFlags struct {
	since, until   string
	offsets        []string
	reasons        []string
	reasonContains string
	transactionID  string
	limit          int
}

func (f *selectionFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.since, "since", "", "only records poisoned at or after this time: RFC 3339 (2026-05-01T14:00:00Z), a date (2026-05-01) or a duration before now (2h)")
	fs.StringVar(&f.until, "until", "", "only records poisoned before this time (same forms as --since)")
	fs.StringSliceVar(&f.offsets, "offset", nil, "read only partition P, from offset O: P:O (repeat, or separate with commas, for several partitions)")
	fs.StringSliceVar(&f.reasons, "reason", nil, "only records with this reason code: "+strings.Join(dlq.ReasonCodes(), ", ")+` ("none": records without one); repeat for several`)
	fs.StringVar(&f.reasonContains, "reason-contains", "", "only records whose reason (reason_poisoned, the text) contains this, ignoring case")
	fs.StringVar(&f.transactionID, "transaction-id", "", "only records of this transaction id")
	fs.IntVar(&f.limit, "limit", 0, "stop after this many records; 0 means no limit")
	_ = cmd.RegisterFlagCompletionFunc("reason", fixedCompletion(dlq.ReasonCodes()...))
	_ = cmd.RegisterFlagCompletionFunc("offset", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("transaction-id", cobra.NoFileCompletions)
}

// selection turns the flags into a dlq.Selection; its errors are usage errors.
func (f *selectionFlags) selection(now time.Time) (dlq.Selection, error) {
	var sel dlq.Selection
	var err error
	if f.since != "" {
		if sel.Since, err = dlq.ParseTime(f.since, now); err != nil {
			return sel, usageError{fmt.Errorf("--since %w", err)}
		}
	}
	if f.until != "" {
		if sel.Until, err = dlq.ParseTime(f.until, now); err != nil {
			return sel, usageError{fmt.Errorf("--until %w", err)}
		}
	}
	if !sel.Since.IsZero() && !sel.Until.IsZero() && !sel.Since.Before(sel.Until) {
		return sel, usageError{fmt.Errorf("--since (%s) must be before --until (%s)", dlq.FormatTime(sel.Since), dlq.FormatTime(sel.Until))}
	}
	for _, o := range f.offsets {
		p, offset, err := dlq.ParsePosition(o)
		if err != nil {
			return sel, usageError{fmt.Errorf("--offset %w", err)}
		}
		if sel.Offsets == nil {
			sel.Offsets = map[int32]int64{}
		}
		if _, dup := sel.Offsets[p]; dup {
			return sel, usageError{fmt.Errorf("--offset names partition %d twice", p)}
		}
		sel.Offsets[p] = offset
	}
	sel.ReasonCodes, sel.ReasonContains, sel.TransactionID = f.reasons, f.reasonContains, f.transactionID
	if err := sel.Filter.Validate(); err != nil {
		return sel, usageError{fmt.Errorf("--reason: %w", err)}
	}
	if f.limit < 0 {
		return sel, usageError{errors.New("--limit must be 0 (no limit) or more")}
	}
	sel.Limit = f.limit
	return sel, nil
}

// outputFlag is --output with its allowed values; the first is the default.
type outputFlag struct {
	value   string
	allowed []string
}

func (o *outputFlag) register(cmd *cobra.Command, allowed ...string) {
	o.allowed = allowed
	cmd.Flags().StringVarP(&o.value, "output", "o", allowed[0], "output format: "+strings.Join(allowed, " or "))
	_ = cmd.RegisterFlagCompletionFunc("output", fixedCompletion(allowed...))
}

func (o *outputFlag) check() error {
	for _, a := range o.allowed {
		if o.value == a {
			return nil
		}
	}
	return usageError{fmt.Errorf("--output %q: must be %s", o.value, strings.Join(o.allowed, " or "))}
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// toolCommand fills in what every operator tool shares.
func toolCommand(cmd *cobra.Command) *cobra.Command {
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	if cmd.ValidArgsFunction == nil {
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	}
	return cmd // wrong arguments are bad usage: argsAreUsage, applied to every command
}

func newDLQListCommand(common *shared) *cobra.Command {
	var sel selectionFlags
	var output outputFlag
	var follow bool
	cmd := toolCommand(&cobra.Command{
		Use:   "list",
		Short: "List poison records: time, position, transaction id, reason, attempts, a preview",
		Long: `List the records of <prefix>.failed, a partition after another, each in offset order, up to
the end offsets known at the start (with --follow, then new records as they arrive, until
Ctrl-C).

--output table (the default) prints fixed-width columns, values cut to fit and control
characters escaped: TIME (when the record was poisoned, UTC), AT (<partition>:<offset>, for
'dlq show'), TRANSACTION ID, CODE (the reason code), ATTEMPTS, REPLAYS (how often the request
had been replayed), SOURCE (the request's topic:partition:offset), REASON and ORIGINAL (the
start of the original request).

--output json prints one JSON object a line, every header decoded: see docs/operators.md.`,
		Example: `  pingpong dlq list
  pingpong dlq list --since 2h --reason malformed
  pingpong dlq list --offset 0:120 --limit 20
  pingpong dlq list --output json | jq -r 'select(.reason_code == "not_ping") | .original'
  pingpong dlq list --follow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			selection, err := sel.selection(time.Now())
			if err != nil {
				return err
			}
			if err := output.check(); err != nil {
				return err
			}
			if follow && !selection.Until.IsZero() {
				return usageError{errors.New("--follow and --until do not go together: following has no end")}
			}
			selection.Follow = follow
			q, err := openQueue(cmd.Context(), common)
			if err != nil {
				return err
			}
			defer q.Close()
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			if output.value == "table" {
				if err := dlq.ListTable.Header(out); err != nil {
					return err
				}
			}
			if follow {
				if err := out.Flush(); err != nil {
					return err
				}
			}
			return q.Select(cmd.Context(), selection, func(r dlq.Record) error {
				var err error
				if output.value == "json" {
					err = dlq.WriteJSONLine(out, r)
				} else {
					err = dlq.ListTable.Row(out, dlq.ListRow(r)...)
				}
				if err != nil {
					return err
				}
				if follow {
					return out.Flush()
				}
				return nil
			})
		},
	})
	sel.register(cmd)
	output.register(cmd, "table", "json")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records as they arrive, until interrupted")
	return cmd
}

func newDLQShowCommand(common *shared) *cobra.Command {
	var output outputFlag
	cmd := toolCommand(&cobra.Command{
		Use:   "show <partition>:<offset>",
		Short: "Show one poison record in full: every header, the answer and the original request",
		Long: `Show the record of <prefix>.failed at <partition>:<offset> (the AT column of 'dlq list'):
every decoded field, the answer and the original request pretty-printed (indented when they are
JSON, a hex dump when they are not text), then every header as read.`,
		Example: `  pingpong dlq show 0:0
  pingpong dlq show 2:117 --output json | jq .headers`,
		Args: func(_ *cobra.Command, args []string) error {
			switch len(args) {
			case 0:
				return usageError{errors.New("which record? give its position, <partition>:<offset>, as the AT column of 'pingpong dlq list' shows it: pingpong dlq show 0:0")}
			case 1:
				return nil
			}
			return usageError{fmt.Errorf("one record at a time: one <partition>:<offset>, not %d arguments", len(args))}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			partition, offset, err := dlq.ParsePosition(args[0])
			if err != nil {
				return usageError{err}
			}
			if err := output.check(); err != nil {
				return err
			}
			q, err := openQueue(cmd.Context(), common)
			if err != nil {
				return err
			}
			defer q.Close()
			r, err := q.Get(cmd.Context(), partition, offset)
			if err != nil {
				return err
			}
			if output.value == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r.JSON())
			}
			return dlq.WriteDetail(cmd.OutOrStdout(), r)
		},
	})
	output.register(cmd, "text", "json")
	return cmd
}

func newDLQStatsCommand(common *shared) *cobra.Command {
	var sel selectionFlags
	var output outputFlag
	cmd := toolCommand(&cobra.Command{
		Use:   "stats",
		Short: "Count poison records by reason and by hour; the oldest and the newest",
		Long: `Count the records of <prefix>.failed that the flags select: by reason code, by hour (UTC);
the oldest and the newest; the records without the original request (from before the poison
headers existed, or omitted because the request was too large), which cannot be replayed; and
those of requests that had been replayed before.`,
		Example: `  pingpong dlq stats
  pingpong dlq stats --since 24h --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			selection, err := sel.selection(time.Now())
			if err != nil {
				return err
			}
			if err := output.check(); err != nil {
				return err
			}
			q, err := openQueue(cmd.Context(), common)
			if err != nil {
				return err
			}
			defer q.Close()
			stats := dlq.NewStats()
			if err := q.Select(cmd.Context(), selection, func(r dlq.Record) error { stats.Add(r); return nil }); err != nil {
				return err
			}
			if output.value == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(stats.JSON(q.Topics.Failed))
			}
			return stats.WriteText(cmd.OutOrStdout(), q.Topics.Failed)
		},
	})
	sel.register(cmd)
	output.register(cmd, "text", "json")
	return cmd
}

func newDLQReplayCommand(common *shared) *cobra.Command {
	var sel selectionFlags
	var dryRun, yes bool
	var maxReplays int
	var rate float64
	cmd := toolCommand(&cobra.Command{
		Use:   "replay",
		Short: "Send the original requests of the selected poison records again, to <prefix>.requested",
		Long: `Send the original requests of the poison records the flags select (all of them when none
is given) to <prefix>.requested again: the original bytes and key, the request's own headers,
and pingpong_replayed_from (<topic>:<partition>:<offset> of the poison record) and
pingpong_replay_count (one more than the record's).

Skipped, and reported: records without the original request (from before the poison headers
existed, or omitted because the request was too large), and records whose request was replayed
--max-replays times already.

Replay after fixing the cause. A request rejected as malformed or not_ping cannot change, so
replaying it only poisons it again (with a higher replay count); replaying helps when the cause
was elsewhere: a broker that was down (retries_exhausted) or a bug in the service (panic).
Each run sends again what it selects: narrow it with --since, --offset, --reason or
--transaction-id to avoid sending a request twice.

Without --yes it shows what it would send and asks for confirmation; when stdin is not a
terminal it refuses (exit code 2). --dry-run only shows.`,
		Example: `  pingpong dlq replay --reason retries_exhausted --dry-run
  pingpong dlq replay --reason retries_exhausted --since 2026-05-01T14:00:00Z --yes
  pingpong dlq replay --transaction-id order-7 --yes --rate 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			selection, err := sel.selection(time.Now())
			if err != nil {
				return err
			}
			if maxReplays < 0 {
				return usageError{errors.New("--max-replays must be 0 or more")}
			}
			if rate < 0 {
				return usageError{errors.New("--rate must be 0 (no limit) or more")}
			}
			interactive := term.IsTerminal(int(os.Stdin.Fd()))
			if !dryRun && !yes && !interactive {
				return exitError{errors.New("refusing to replay without confirmation: stdin is not a terminal. " +
					"Pass --yes to replay, or --dry-run to see what would be replayed"), exitUsage}
			}
			q, err := openQueue(cmd.Context(), common)
			if err != nil {
				return err
			}
			defer q.Close()
			plan, err := q.Plan(cmd.Context(), selection, maxReplays)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := writePlan(out, plan); err != nil {
				return err
			}
			summary := dlq.Summarize(plan)
			n := dlq.ToReplay(plan)
			if dryRun || n == 0 {
				writeReplaySummary(out, summary, n, dryRun, q.Topics.Requested)
				return nil
			}
			if !yes {
				question := fmt.Sprintf("Replay %d request(s) to %s? [y/N] ", n, q.Topics.Requested)
				ok, err := confirm(cmd.Context(), cmd.InOrStdin(), cmd.ErrOrStderr(), question)
				if err != nil {
					return err
				}
				if !ok {
					return exitError{errors.New("not confirmed: nothing replayed"), exitUsage}
				}
			}
			replayed, failed, err := q.Send(cmd.Context(), plan, rate, func(s dlq.Sent) {
				if s.Err != nil {
					fmt.Fprintf(out, "FAILED   %s: %v\n", s.From.Position(), s.Err)
					return
				}
				fmt.Fprintf(out, "replayed %s -> %s:%d:%d\n", s.From.Position(), s.To.Topic, s.To.Partition, s.To.Offset)
			})
			summary.Replayed, summary.Failed = replayed, failed
			writeReplaySummary(out, summary, n, false, q.Topics.Requested)
			if err != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d request(s) could not be replayed", failed, n)
			}
			return nil
		},
	})
	sel.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&dryRun, "dry-run", false, "show what would be replayed; send nothing")
	fs.BoolVarP(&yes, "yes", "y", false, "replay without asking for confirmation")
	fs.IntVar(&maxReplays, "max-replays", dlq.DefaultMaxReplays, "skip a record whose request was replayed this many times already")
	fs.Float64Var(&rate, "rate", 100, "requests sent a second at most; 0 means no limit")
	return cmd
}

// replayTable is the plan `dlq replay` shows.
var replayTable = dlq.Table{
	{Title: "ACTION", Width: 6},
	{Title: "AT", Width: 9},
	{Title: "TRANSACTION ID", Width: 20},
	{Title: "CODE", Width: 17},
	{Title: "REPLAYS", Width: 7},
	{Title: "DETAIL"},
}

func writePlan(w io.Writer, plan []dlq.Decision) error {
	if len(plan) == 0 {
		_, err := fmt.Fprintln(w, "no poison records selected")
		return err
	}
	if err := replayTable.Header(w); err != nil {
		return err
	}
	for _, d := range plan {
		r := d.Record
		action, detail := "replay", fmt.Sprintf("as replay %d: %s", r.ReplayCount+1, r.Preview(dlq.PreviewLength))
		if d.Skip != "" {
			action, detail = "skip", d.Skip
		}
		if err := replayTable.Row(w, action, r.Position(), dlq.Escape([]byte(r.TransactionID)),
			dlq.Escape([]byte(r.ReasonCode)), fmt.Sprint(r.ReplayCount), detail); err != nil {
			return err
		}
	}
	return nil
}

func writeReplaySummary(w io.Writer, s dlq.Summary, toReplay int, dryRun bool, topic string) {
	skipped := 0
	for _, n := range s.Skipped {
		skipped += n
	}
	if dryRun {
		fmt.Fprintf(w, "dry run: would replay %d to %s, skip %d; nothing sent\n", toReplay, topic, skipped)
	} else {
		fmt.Fprintf(w, "replayed %d to %s, skipped %d, failed %d\n", s.Replayed, topic, skipped, s.Failed)
	}
	for _, why := range s.SkipReasons() {
		fmt.Fprintf(w, "  skipped %d: %s\n", s.Skipped[why], why)
	}
}

// confirm asks question on out and reads the answer from in: only y or yes (any case) is a yes.
// Ctrl-C at the prompt (ctx done: main catches SIGINT) stops the command with exit code 130;
// the read it abandons ends with the process.
func confirm(ctx context.Context, in io.Reader, out io.Writer, question string) (bool, error) {
	fmt.Fprint(out, question)
	answered := make(chan string, 1)
	go func() {
		answer, _ := bufio.NewReader(in).ReadString('\n')
		answered <- answer
	}()
	var answer string
	select {
	case answer = <-answered:
	case <-ctx.Done():
		fmt.Fprintln(out)
		return false, exitError{errors.New("interrupted: nothing replayed"), exitInterrupted}
	}
	if answer == "" { // end of input
		fmt.Fprintln(out)
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
