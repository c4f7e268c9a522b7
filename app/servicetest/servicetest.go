// Package servicetest runs the service end to end in tests: an in-process Kafka-protocol broker
// (kfake), the service wired as the binary wires it, and an independent franz-go client that
// sends requests and reads the answers back.
package servicetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/embedded"
	"github.com/pingpong/pingpong/app/logging"
	"github.com/pingpong/pingpong/app/service"
)

// Prefix is the topic prefix the tests use (the service's default).
const Prefix = "dev.pingpong"

// Topics are the topics of Prefix.
var Topics = config.Kafka{TopicPrefix: Prefix}.Topics()

// Cluster starts an in-process broker with the three topics of Prefix, each with partitions
// partitions, and stops it when the test ends. Its groups rebalance as the embedded broker's do,
// closer to Kafka than kfake alone (embedded.Listen, embedded.KeepJoinersAlive): a member whose
// client dies in the middle of a JoinGroup leaves a session timeout later instead of holding the
// rebalances for ever, and a member waiting in a JoinGroup or a SyncGroup is not dropped
// unanswered.
func Cluster(t testing.TB, partitions int, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), Topics.All()...), kfake.ListenFn(embedded.Listen)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	stop, err := embedded.KeepJoinersAlive(c)
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(stop)
	return c
}

// Config is the service's default configuration, as the binary would read it with no flags and
// no environment, pointed at brokers, with HTTP on a free loopback port and short retries.
func Config(t testing.TB, brokers []string) config.Service {
	t.Helper()
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	c := config.ServiceFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	c.Kafka.Brokers = strings.Join(brokers, ",")
	c.HTTPAddr = "127.0.0.1:0"
	c.Retry.InitialInterval = 10 * time.Millisecond
	c.Retry.MaxInterval = 50 * time.Millisecond
	c.ShutdownTimeout = 10 * time.Second
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return *c
}

// Running is a service started by Start.
type Running struct {
	*service.Service
	stop func() error
}

// Stop shuts the service down as SIGTERM would and returns Run's error.
func (r *Running) Stop() error { return r.stop() }

// Start runs the service until Stop or the end of the test. Its logs are shown when the test
// fails (all of them with go test -v).
// The service traces nothing unless opts give it a tracer (service.WithTracer), whatever the
// caller's OTEL_ variables say.
func Start(t testing.TB, cfg config.Service, opts ...service.Option) *Running {
	t.Helper()
	logs := &SyncBuffer{}
	logger, err := logging.New(cfg.Logging, logs)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		logger.SetOutput(testWriter{t})
	}
	t.Cleanup(func() {
		if t.Failed() && logs.Len() > 0 {
			t.Logf("service logs:\n%s", logs.String())
		}
	})
	svc, err := service.New(cfg, logger, append([]service.Option{service.WithTracer(nil)}, opts...)...)
	if err != nil {
		t.Fatalf("starting the service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	var runErr error
	r := &Running{Service: svc}
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(cfg.ShutdownTimeout + 10*time.Second):
				runErr = errors.New("the service did not stop within its shutdown timeout")
			}
		}
		return runErr
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

type testWriter struct{ t testing.TB }

// SyncBuffer is a bytes.Buffer that one side writes (a logger, a child process) while the test
// reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Client is an independent franz-go client on brokers, closed when the test ends. It produces
// to the partition a record names (ManualPartitioner) and waits for all in-sync replicas.
func Client(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// RefusedProduce is the broker's answer to req refusing every record with code: what a kfake
// control function returns to fail a write (kerr.InvalidRecord.Code is one the client does not
// retry).
func RefusedProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, topic := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = topic.Topic, topic.TopicID
		for _, p := range topic.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
