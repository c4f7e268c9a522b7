package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/kafkaclient"
	"github.com/pingpong/pingpong/app/topics"
)

func newTopicsCommand(common *shared) *cobra.Command {
	cmd := commandGroup(&cobra.Command{
		Use:   "topics",
		Short: "Manage the service's topics",
	})
	var spec config.TopicSpec
	create := &cobra.Command{
		Use:   "create",
		Short: "Create <prefix>.requested, .succeeded and .failed; topics that exist are left as they are",
		Long: `Create the three topics with TOPIC_PARTITIONS partitions, TOPIC_REPLICATION_FACTOR replicas and
min.insync.replicas TOPIC_MIN_INSYNC_REPLICAS. Topics that exist already are reported and left
alone, so running it again is harmless. For production, use a replication factor of 3 and
min.insync.replicas 2.

It takes the service's Kafka settings; with KAFKA_BROKERS unset it uses ` + devBroker + `, the
embedded broker of 'go run ./app'.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, opts, err := toolKafka(common)
			if err != nil {
				return err
			}
			if err := spec.Validate(); err != nil {
				return err
			}
			adm, closeAdm, err := adminClient(k, opts...)
			if err != nil {
				return unsetBrokersError(common, err)
			}
			defer closeAdm()
			ctx, cancel := context.WithTimeout(cmd.Context(), k.Timeout)
			defer cancel()
			results, err := topics.Create(ctx, adm, spec, k.Topics().All()...)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOPIC\tSTATUS\tPARTITIONS")
			for _, r := range results {
				status := "exists"
				if r.Created {
					status = "created"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\n", r.Topic, status, r.Partitions)
			}
			return w.Flush()
		},
	}
	spec.AddFlags(create.Flags())
	cmd.AddCommand(create)
	return cmd
}

// adminClient connects a franz-go admin client with the shared Kafka settings and opts.
func adminClient(k config.Kafka, opts ...kgo.Opt) (*kadm.Client, func(), error) {
	// A wrong certificate or password fails here with an error that names the setting.
	if err := kafkaclient.Check(context.Background(), k); err != nil {
		return nil, nil, err
	}
	base, err := kafkaclient.Options(k)
	if err != nil {
		return nil, nil, err
	}
	client, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the Kafka client: %w", err)
	}
	return kadm.NewClient(client), client.Close, nil
}
