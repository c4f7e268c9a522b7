// Package topics creates the service's topics.
package topics

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pingpong/pingpong/app/config"
)

// Result is what became of one topic.
type Result struct {
	Topic      string
	Created    bool // false: it existed already
	Partitions int
}

// Create creates the topics that do not exist yet with spec, and leaves the others as they are:
// running it again is harmless. An existing topic with fewer partitions than spec is reported in
// its Result, not changed.
func Create(ctx context.Context, adm *kadm.Client, spec config.TopicSpec, names ...string) ([]Result, error) {
	configs := map[string]*string{}
	if spec.MinInsyncReplicas > 0 {
		v := strconv.Itoa(spec.MinInsyncReplicas)
		configs["min.insync.replicas"] = &v
	}
	created, err := adm.CreateTopics(ctx, int32(spec.Partitions), int16(spec.ReplicationFactor), configs, names...)
	if err != nil {
		return nil, fmt.Errorf("creating topics: %w", err)
	}
	var existing []string
	results := make([]Result, 0, len(names))
	for _, name := range names {
		r, ok := created[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("creating topic %s: the broker did not answer for it", name)
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			existing = append(existing, name)
		case r.Err != nil:
			return nil, fmt.Errorf("creating topic %s: %w (%s)", name, r.Err, r.ErrMessage)
		default:
			results = append(results, Result{Topic: name, Created: true, Partitions: int(r.NumPartitions)})
		}
	}
	if len(existing) > 0 {
		described, err := adm.ListTopics(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("describing the existing topics: %w", err)
		}
		for _, name := range existing {
			results = append(results, Result{Topic: name, Partitions: len(described[name].Partitions)})
		}
	}
	return results, nil
}
