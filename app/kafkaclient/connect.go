package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/signin"
)

// Connect opens a franz-go client with the shared settings plus opts and makes sure a broker
// answers within KAFKA_TIMEOUT, so that an operator tool pointed at the wrong address fails
// with an error that says so rather than hanging on its first request. A refused connection,
// TLS handshake or SASL login fails at once with the same explanation as the service's
// start-up Check ("no broker listens at ..."); only silence waits the whole KAFKA_TIMEOUT.
func Connect(ctx context.Context, k config.Kafka, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := Options(k)
	if err != nil {
		return nil, err
	}
	var sasl saslWatch
	client, err := kgo.NewClient(append(append(base, kgo.WithHooks(&sasl)), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("creating the Kafka client: %w", err)
	}
	if err := ping(ctx, client, k.Timeout, sasl.failed.Load); err != nil {
		client.Close()
		if sasl.failed.Load() {
			err = &saslError{err}
		}
		if !unreachable(err) {
			return nil, Explain(k, err)
		}
		return nil, &UnreachableError{Brokers: k.Brokers, Timeout: k.Timeout, Err: err}
	}
	return client, nil
}

// unreachable is an error that says only that nothing answered in time.
func unreachable(err error) bool {
	var (
		exchange *saslError
		signIn   *signin.Error
	)
	return !errors.As(err, &exchange) && !errors.As(err, &signIn) && !errors.Is(err, syscall.ECONNREFUSED) && errors.Is(err, context.DeadlineExceeded)
}

// ping asks the brokers for metadata until one answers or timeout passes. A refused
// connection is not tried again: kgo's Ping has tried every broker, and a newcomer who typed
// the wrong address (or has not started `go run ./app`) should hear so in milliseconds, as the
// service says it, not after KAFKA_TIMEOUT of silence. refused reports a login the broker
// turned down, which no retry changes either.
func ping(ctx context.Context, client *kgo.Client, timeout time.Duration, refused func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := client.Ping(ctx)
		if err == nil {
			return nil
		}
		var kafkaErr *kerr.Error
		if errors.As(err, &kafkaErr) && !kafkaErr.Retriable || refused() {
			return err // the broker answered, with a refusal (SASL authentication, say)
		}
		var signIn *signin.Error
		if errors.As(err, &signIn) {
			return err // the token endpoint or the AWS SDK refused, before any broker was asked
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return err // nothing listens there
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// UnreachableError is a cluster that did not answer within KAFKA_TIMEOUT.
type UnreachableError struct {
	Brokers string
	Timeout time.Duration
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach Kafka at %s within %s (KAFKA_TIMEOUT): %v",
		strings.ReplaceAll(e.Brokers, " ", ""), e.Timeout, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }
