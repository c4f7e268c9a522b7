package helm_test

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/pingpong/pingpong/app/config"
)

// exactlyOnce are values that turn exactly-once delivery on, merged over more values.
func exactlyOnce(delivery, more map[string]any) map[string]any {
	return merge(map[string]any{"kafka": map[string]any{"delivery": merge(map[string]any{"mode": "exactly-once"}, delivery)}}, more)
}

// serviceConfig is what the service makes of the environment the chart gives the Deployment's
// container, and whether it accepts it (it would exit 2 otherwise).
func serviceConfig(t *testing.T, r *release) (*config.Service, error) {
	t.Helper()
	env := r.env(t, r.deployment.Spec.Template.Spec.Containers[0])
	fs := pflag.NewFlagSet("pingpong", pflag.ContinueOnError)
	s := config.ServiceFlags(fs)
	if err := config.ApplyEnv(fs, func(name string) (string, bool) { v, ok := env[name]; return v, ok }); err != nil {
		return s, err
	}
	return s, s.Validate()
}

// TestDeliveryReachesTheService: kafka.delivery becomes KAFKA_DELIVERY and the transaction
// settings, which the service reads as given and accepts; KAFKA_TRANSACTIONAL_ID is left out
// while the value is empty, so that each pod takes <group>-<pod name>.
func TestDeliveryReachesTheService(t *testing.T) {
	t.Run("default: at least once", func(t *testing.T) {
		r := render(t, nil)
		s, err := serviceConfig(t, r)
		if err != nil {
			t.Fatalf("the service refuses the chart's defaults: %v", err)
		}
		if s.Transport.Delivery.ExactlyOnce() {
			t.Error("the chart's defaults turn exactly-once on")
		}
		if strings.Contains(r.notes, "read_committed") {
			t.Error("the notes speak of read_committed though delivery is at least once")
		}
	})

	t.Run("exactly once", func(t *testing.T) {
		r := render(t, exactlyOnce(map[string]any{"transactionInterval": "250ms", "transactionMaxRequests": 5000, "transactionTimeout": "30s"}, nil))
		env := r.env(t, r.deployment.Spec.Template.Spec.Containers[0])
		if _, set := env["KAFKA_TRANSACTIONAL_ID"]; set {
			t.Errorf("KAFKA_TRANSACTIONAL_ID is set (%q) though kafka.delivery.transactionalId is empty: every pod would share one id", env["KAFKA_TRANSACTIONAL_ID"])
		}
		s, err := serviceConfig(t, r)
		if err != nil {
			t.Fatalf("the service refuses the chart's settings: %v", err)
		}
		d := s.Transport.Delivery
		if !d.ExactlyOnce() || d.TransactionInterval.String() != "250ms" || d.TransactionMaxRequests != 5000 || d.TransactionTimeout.String() != "30s" || d.TransactionalID != "" {
			t.Errorf("the service reads %+v, want exactly-once, 250ms, 5000 requests, 30s and no transactional id", d)
		}
		if !strings.Contains(r.notes, "isolation.level=read_committed") {
			t.Errorf("the notes do not tell readers of the answers to read committed:\n%s", r.notes)
		}
		if r.job != nil {
			for name := range r.env(t, r.job.Spec.Template.Spec.Containers[0]) {
				if name == "KAFKA_DELIVERY" || strings.HasPrefix(name, "KAFKA_TRANSACTION") {
					t.Errorf("the topics Job gets %s, a setting of the service only", name)
				}
			}
		}
	})

	t.Run("a fixed transactional id for one pod", func(t *testing.T) {
		r := render(t, exactlyOnce(map[string]any{"transactionalId": "pingpong-single"}, map[string]any{
			"replicaCount":   1,
			"updateStrategy": map[string]any{"type": "Recreate", "rollingUpdate": nil},
		}))
		s, err := serviceConfig(t, r)
		if err != nil {
			t.Fatalf("the service refuses the chart's settings: %v", err)
		}
		if s.Transport.Delivery.TransactionalID != "pingpong-single" {
			t.Errorf("KAFKA_TRANSACTIONAL_ID reaches the service as %q, want pingpong-single", s.Transport.Delivery.TransactionalID)
		}
	})
}

// TestDeliveryValuesAreChecked: the schema refuses what the service would refuse on its own
// (a mode it does not know, a bound out of range), and the templates refuse a fixed
// transactional id wherever two pods could run with it and fence each other.
func TestDeliveryValuesAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"an unknown mode", exactlyOnce(map[string]any{"mode": "exactly_once"}, nil), "/kafka/delivery/mode"},
		{"a misspelt setting", exactlyOnce(map[string]any{"transactionTimout": "10s"}, nil), "'transactionTimout' not allowed"},
		{"an interval that is not a Go duration", exactlyOnce(map[string]any{"transactionInterval": "100"}, nil), "/kafka/delivery/transactionInterval"},
		{"no request in a transaction", exactlyOnce(map[string]any{"transactionMaxRequests": 0}, nil), "/kafka/delivery/transactionMaxRequests"},
		{"a transactional id longer than Kafka takes", exactlyOnce(map[string]any{"transactionalId": strings.Repeat("x", 250)}, nil), "/kafka/delivery/transactionalId"},
		{"a fixed transactional id for two replicas", exactlyOnce(map[string]any{"transactionalId": "pingpong-1"}, nil), "kafka.delivery.transactionalId is \"pingpong-1\""},
		{"a fixed transactional id under an autoscaler", exactlyOnce(map[string]any{"transactionalId": "pingpong-1"}, map[string]any{
			"replicaCount": 1, "updateStrategy": map[string]any{"type": "Recreate", "rollingUpdate": nil},
			"autoscaling": map[string]any{"hpa": map[string]any{"enabled": true, "minReplicas": 1, "maxReplicas": 1}},
		}), "a fixed transactional id belongs to one producer"},
		{"a fixed transactional id in a rolling update (two pods during the surge)", exactlyOnce(map[string]any{"transactionalId": "pingpong-1"}, map[string]any{
			"replicaCount": 1,
		}), "updateStrategy.type Recreate"},
		{"a transaction setting in extraEnv", map[string]any{"extraEnv": []any{map[string]any{"name": "KAFKA_TRANSACTION_TIMEOUT", "value": "1m"}}}, "extraEnv sets KAFKA_TRANSACTION_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // one helm process each
			_, err := renderChart(t, tc.values)
			if err == nil {
				t.Fatalf("values %v were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}
