package deployments

import (
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"

	"github.com/pingpong/pingpong/app/config"
)

// serviceDelivery is what the service makes of the pingpong container's environment: its
// delivery settings, or the error it would exit 2 with.
func serviceDelivery(t *testing.T, s types.ServiceConfig) (config.Delivery, error) {
	t.Helper()
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	svc := config.ServiceFlags(fs)
	err := config.ApplyEnv(fs, func(name string) (string, bool) {
		v, ok := s.Environment[name]
		if !ok || v == nil {
			return "", false
		}
		return *v, true
	})
	if err == nil {
		err = svc.Validate()
	}
	return svc.Transport.Delivery, err
}

// TestComposeDeliveryIsAtLeastOnceUnlessAsked: the stack runs the service's default delivery,
// and KAFKA_DELIVERY=exactly-once in the caller's environment turns exactly-once on (the
// service accepts the result); a value the service refuses reaches it as it is, so the service
// exits 2 naming it rather than the stack silently running another mode.
func TestComposeDeliveryIsAtLeastOnceUnlessAsked(t *testing.T) {
	for _, tc := range []struct {
		caller types.Mapping
		want   string
	}{
		{types.Mapping{}, config.DeliveryAtLeastOnce},
		{types.Mapping{"KAFKA_DELIVERY": config.DeliveryExactlyOnce}, config.DeliveryExactlyOnce},
		{types.Mapping{"KAFKA_DELIVERY": ""}, config.DeliveryAtLeastOnce}, // :- takes the default for an empty value too
	} {
		s := service(t, loadComposeWith(t, tc.caller), "pingpong")
		d, err := serviceDelivery(t, s)
		if err != nil {
			t.Errorf("with %v the service refuses the stack's settings: %v", tc.caller, err)
			continue
		}
		if d.Mode != tc.want {
			t.Errorf("with %v the service runs %s, want %s", tc.caller, d.Mode, tc.want)
		}
	}
	s := service(t, loadComposeWith(t, types.Mapping{"KAFKA_DELIVERY": "exactly_once"}), "pingpong")
	if _, err := serviceDelivery(t, s); err == nil {
		t.Error("KAFKA_DELIVERY=exactly_once was accepted; the service should refuse it and exit 2")
	}
}

// TestComposeKafkaAllowsTransactions: a single broker can hold only one replica of the
// transaction state log; with Kafka's defaults (3 replicas, min.insync.replicas 2) the log is
// never created and no transactional producer (KAFKA_DELIVERY=exactly-once) can start.
func TestComposeKafkaAllowsTransactions(t *testing.T) {
	kafka := service(t, loadCompose(t), "kafka")
	for _, name := range []string{"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"} {
		if n, err := strconv.Atoi(env(kafka, name)); err != nil || n != 1 {
			t.Errorf("kafka: %s = %q, want 1 (one broker)", name, env(kafka, name))
		}
	}
}
