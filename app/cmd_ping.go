package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pingpong/pingpong/app/pinger"
)

func newPingCommand(common *shared) *cobra.Command {
	var count, bad int
	var timeout time.Duration
	cmd := toolCommand(&cobra.Command{
		Use:   "ping",
		Short: "Send pings (and, with --malformed, bad requests) and wait for every answer",
		Long: `Send --count pings to <prefix>.requested, and --malformed bad requests (malformed ones and
non-pings, in turn), then wait for each answer on <prefix>.succeeded or <prefix>.failed and print
its round trip; then a summary (sent, answered, round trip p50 and p99, unanswered).

The answers are read directly by partition from the end offsets taken before sending, never in
a consumer group. Pings and non-pings are matched to their answers by transaction id (the
record key), malformed requests, which have none, by the original request the poison record
carries.

It takes the service's Kafka settings; with KAFKA_BROKERS unset it uses ` + devBroker + `, the
embedded broker of 'go run ./app'.

Ctrl-C stops it: it says it was interrupted and prints the summary so far (answered,
unanswered, not sent).

Exit codes: 0 every request got the answer it must get (a pong for a ping, a poison record with
the right reason code for a bad request); 1 one did not within --timeout, or Kafka could not be
reached within KAFKA_TIMEOUT; 2 bad usage or configuration; 130 interrupted (Ctrl-C).`,
		Example: `  pingpong ping
  pingpong ping --count 3 --malformed 2
  KAFKA_BROKERS=kafka:9092 TOPIC_PREFIX=prod.pingpong pingpong ping --count 1 --timeout 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case count < 0 || bad < 0:
				return usageError{errors.New("--count and --malformed must be 0 or more")}
			case count+bad == 0:
				return usageError{errors.New("nothing to send: --count and --malformed are both 0")}
			case timeout <= 0:
				return usageError{errors.New("--timeout must be above 0")}
			}
			k, opts, err := toolKafka(common)
			if err != nil {
				return err
			}
			p, err := pinger.Open(cmd.Context(), k, opts...)
			if err != nil {
				return unsetBrokersError(common, err)
			}
			defer p.Close()

			run := pinger.RunID()
			reqs := pinger.Requests(run, count, bad)
			width := 0
			for _, r := range reqs {
				width = max(width, len(r.Label))
			}
			out := cmd.OutOrStdout()
			topics := k.Topics()
			fmt.Fprintf(out, "sending %d ping(s) and %d bad request(s) to %s on %s (run %s)\n", count, bad, topics.Requested, k.Brokers, run)
			err = p.Run(cmd.Context(), reqs, timeout, func(r *pinger.Request) { pinger.WriteAnswer(out, r, width) })
			if err != nil {
				return err
			}
			summary := pinger.Summarize(reqs)
			interrupted := cmd.Context().Err() != nil // Ctrl-C: main cancels the context
			pinger.WriteSummary(out, summary, reqs, timeout, interrupted)
			if interrupted {
				return exitError{fmt.Errorf("interrupted: %d of %d request(s) answered, %d sent and not answered yet, %d not sent",
					summary.Answered, len(reqs), len(summary.Unanswered), summary.NotSent), exitInterrupted}
			}
			if !summary.OK() {
				return fmt.Errorf("%d of %d request(s) did not get the answer they must get within %s", len(reqs)-summary.Answered+summary.Unexpected, len(reqs), timeout)
			}
			return nil
		},
	})
	fs := cmd.Flags()
	fs.IntVarP(&count, "count", "c", 10, "pings to send")
	fs.IntVar(&bad, "malformed", 0, "bad requests to send as well: malformed ones and non-pings, in turn")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for all the answers")
	return cmd
}
