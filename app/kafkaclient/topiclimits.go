package kafkaclient

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
)

// CheckBatchBytes compares KAFKA_PRODUCER_BATCH_BYTES with max.message.bytes of the answer
// topics: a batch larger than a topic's limit is refused by the broker (MESSAGE_TOO_LARGE), its
// answers are nacked and redelivered, and the requests are answered late or only on the poison
// queue. Above the smaller of the two limits, it returns a *config.Error naming both settings,
// so the service exits 2: lowering the batch silently would also break MAX_REQUEST_BYTES's
// promise (a request of that size must fit in a poison record), and which of the two settings
// to change, or whether to raise the topics' limit instead, is the operator's choice.
//
// Topics that do not exist, or whose configuration the principal may not describe, are not
// checked: the first is reported where the topics are used, the second needs an ACL the service
// does not otherwise need.
func CheckBatchBytes(ctx context.Context, k config.Kafka, batchBytes int, topics ...string) error {
	opts, err := Options(k)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating the Kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	described, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil // not allowed or not supported: nothing to check (see above)
	}
	for _, rc := range described {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			limit, err := strconv.Atoi(*c.Value)
			if err != nil || batchBytes <= limit {
				continue
			}
			const env = "KAFKA_PRODUCER_BATCH_BYTES"
			return &config.Error{Env: env, Flag: config.FlagName(env), Value: strconv.Itoa(batchBytes), Problem: fmt.Sprintf(
				"must be at most max.message.bytes of %s (%d): the broker refuses a larger batch of answers; lower %s to %d or less (and MAX_REQUEST_BYTES with it), or raise the topic's max.message.bytes",
				rc.Name, limit, env, limit)}
		}
	}
	return nil
}
