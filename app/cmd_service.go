package main

import (
	"errors"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/pingpong/pingpong/app/buildinfo"
	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/embedded"
	"github.com/pingpong/pingpong/app/logging"
	"github.com/pingpong/pingpong/app/service"
	"github.com/pingpong/pingpong/app/telemetry"
)

func newServiceCommand(common *shared) *cobra.Command {
	var cfg config.Service
	cmd := &cobra.Command{
		Use:   "pingpong",
		Short: "Answer ping requests on Kafka: <prefix>.requested in, <prefix>.succeeded and <prefix>.failed out",
		Long: `pingpong consumes <prefix>.requested in a consumer group and answers each request on
<prefix>.succeeded (a pong) or <prefix>.failed (anything else, with headers that say why).

With KAFKA_BROKERS unset it runs an embedded development broker on 127.0.0.1:9092.
Every setting is a flag and an environment variable; a flag wins.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Kafka, cfg.Logging = common.kafka, common.logging
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := telemetry.Check(os.Getenv); err != nil {
				return err
			}
			logger, err := logging.New(cfg.Logging, os.Stderr)
			if err != nil {
				return err
			}
			if len(cfg.Kafka.BrokerList()) == 0 {
				broker, err := startEmbedded(&cfg, logger)
				if err != nil {
					return err
				}
				defer broker.Close()
			}
			logger.WithFields(logrus.Fields{
				"version":        buildinfo.Version,
				"brokers":        cfg.Kafka.Brokers,
				"topic_prefix":   cfg.Kafka.TopicPrefix,
				"consumer_group": cfg.ConsumerGroup,
				"http_addr":      cfg.HTTPAddr,
			}).Info("Starting pingpong")
			svc, err := service.New(cfg, logger)
			if err != nil {
				return err
			}
			return svc.Run(cmd.Context())
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// startEmbedded starts the development broker and points the configuration at it.
func startEmbedded(cfg *config.Service, logger *logrus.Logger) (*embedded.Broker, error) {
	if cfg.Kafka.TLS.On() || cfg.Kafka.SASL.Mechanism != "" {
		return nil, &config.Error{Env: "KAFKA_BROKERS", Flag: "kafka-brokers", Value: "",
			Problem: "must be set when TLS or SASL is configured: the embedded broker speaks neither"}
	}
	topics := cfg.Kafka.Topics()
	broker, err := embedded.Start(cfg.EmbeddedBrokerPort, cfg.Topics.Partitions, topics.All()...)
	if err != nil {
		return nil, errors.Join(err, errors.New("another broker may be using the port: set KAFKA_BROKERS to use it, or EMBEDDED_BROKER_PORT to move"))
	}
	cfg.Kafka.Brokers = broker.Addr()
	logger.WithField("broker", broker.Addr()).Warn("KAFKA_BROKERS is unset: running an embedded in-memory broker, for development only")
	logHints(logger, broker.Addr(), topics)
	return broker, nil
}

// logHints prints the commands of the README's shortest path (steps 2 to 4), with the broker's
// real address, so that they can be copied from the log; TestShortestPathIsTheREADMEs holds them
// to the README. Each command is a field with no double quote or backslash in it, so that it reads
// the same, and can be copied as is, from a terminal, a file or a pipe, in text or JSON: the
// formatters escape only those (hence no hint for the README's `echo '{...}' | kcat -P`).
// kcat -C reads one topic (its last -t), hence a command for each answer topic.
func logHints(logger *logrus.Logger, broker string, topics config.Topics) {
	tool := "go run ./app"
	if broker != devBroker { // EMBEDDED_BROKER_PORT moved it from where the tools look
		tool = "KAFKA_BROKERS=" + broker + " " + tool
	}
	logger.WithField("command", tool+" ping --count 3 --malformed 2").Info("Send pings, and bad requests, and wait for their answers")
	logger.WithField("command", tool+" dlq list").Info("List the poison queue, where the bad requests were answered, and why")
	logger.WithField("command", tool+" dlq show P:O").Info("Show one poison record in full, at a position P:O from the AT column of dlq list")
	logger.WithField("command", "kcat -C -b "+broker+" -t "+topics.Succeeded+" -e -K ' '").Info("Read the pongs")
	logger.WithField("command", "kcat -C -b "+broker+" -t "+topics.Failed+" -e -K ' '").Info("Read the poison queue")
}
