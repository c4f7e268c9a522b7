package helm_test

import (
	"strings"
	"testing"
)

// TestSchemaRejectsBadValues: values.schema.json refuses wrong types and unknown keys at every
// level, so a typo fails `helm install` instead of being silently ignored.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string // in the error
	}{
		{"wrong type at the top", map[string]any{"replicaCount": "two"}, "/replicaCount"},
		{"wrong type deep down", map[string]any{"kafka": map[string]any{"tls": map[string]any{"enabled": "yes"}}}, "/kafka/tls/enabled"},
		{"unknown key at the top", map[string]any{"replicas": 3}, "'replicas' not allowed"},
		{"unknown key in a section", map[string]any{"image": map[string]any{"tagg": "1.0.0"}}, "'tagg' not allowed"},
		{"unknown key deep down", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"pasword": "x"}}}, "'pasword' not allowed"},
		{"unknown key in a security context", map[string]any{"containerSecurityContext": map[string]any{"readOnlyRootFilesytem": true}}, "'readOnlyRootFilesytem' not allowed"},
		{"unknown key in a probe", map[string]any{"livenessProbe": map[string]any{"path": "/live"}}, "'path' not allowed"},
		{"unknown key in a list item", map[string]any{"extraEnv": []any{map[string]any{"name": "GOGC", "vaule": "50"}}}, "'vaule' not allowed"},
		{"unknown key in a toleration", map[string]any{"tolerations": []any{map[string]any{"key": "k", "efect": "NoSchedule"}}}, "'efect' not allowed"},
		{"unknown SASL mechanism", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"mechanism": "GSSAPI"}}}, "/kafka/sasl/mechanism"},
		{"unknown log format", map[string]any{"config": map[string]any{"logFormat": "xml"}}, "/config/logFormat"},
		{"not a Go duration", map[string]any{"config": map[string]any{"retry": map[string]any{"maxInterval": "10 seconds"}}}, "/config/retry/maxInterval"},
		{"a broker without a port", map[string]any{"kafka": map[string]any{"brokers": "kafka.kafka.svc"}}, "/kafka/brokers"},
		{"no broker (no embedded broker on Kubernetes)", map[string]any{"kafka": map[string]any{"brokers": ""}}, "/kafka/brokers"},
		{"a topic prefix Kafka refuses", map[string]any{"config": map[string]any{"topicPrefix": "prod/pingpong"}}, "/config/topicPrefix"},
		{"a port out of range", map[string]any{"containerPorts": map[string]any{"http": 70000}}, "/containerPorts/http"},
		{"a zero margin (grace period not above the shutdown timeout)", map[string]any{"terminationGracePeriodMarginSeconds": 0}, "/terminationGracePeriodMarginSeconds"},
		{"a replication factor of 0", map[string]any{"topics": map[string]any{"replicationFactor": 0}}, "/topics/replicationFactor"},
		{"a PDB that is neither number nor percentage", map[string]any{"pdb": map[string]any{"minAvailable": "half"}}, "/pdb/minAvailable"},
		{"an unknown spread policy", map[string]any{"topologySpread": map[string]any{"zone": map[string]any{"whenUnsatisfiable": "Maybe"}}}, "/topologySpread/zone/whenUnsatisfiable"},
		{"an image digest that is not one", map[string]any{"image": map[string]any{"digest": "latest"}}, "/image/digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // one helm process each
			_, err := renderChart(t, tc.values)
			if err == nil {
				t.Fatalf("values %v were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not come from the schema or does not point at %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestTemplatesRefuseInconsistentValues: what the schema cannot express (relations between
// values) the templates check, with a message that says what to change.
func TestTemplatesRefuseInconsistentValues(t *testing.T) {
	hpa := func(over map[string]any) map[string]any {
		return map[string]any{"autoscaling": map[string]any{"hpa": merge(map[string]any{"enabled": true}, over)}}
	}
	keda := func(over map[string]any) map[string]any {
		return map[string]any{"autoscaling": map[string]any{"keda": merge(map[string]any{"enabled": true}, over)}}
	}
	for _, tc := range []refusal{
		{"HPA above the partitions", hpa(map[string]any{"maxReplicas": 7}), "autoscaling.hpa.maxReplicas (7) is above topics.partitions (6)"},
		{"KEDA above the partitions", merge(keda(map[string]any{"maxReplicas": 13}), map[string]any{"topics": map[string]any{"partitions": 12}}), "autoscaling.keda.maxReplicas (13) is above topics.partitions (12)"},
		{"HPA min above max", hpa(map[string]any{"minReplicas": 5, "maxReplicas": 4}), "minReplicas (5) is above autoscaling.hpa.maxReplicas (4)"},
		{"HPA and KEDA", merge(hpa(nil), map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"enabled": true}}}), "enable one of them"},
		{"more replicas than partitions", map[string]any{"replicaCount": 7}, "replicaCount (7) is above topics.partitions (6)"},
		{"a PDB that blocks every drain", map[string]any{"pdb": map[string]any{"minAvailable": 2}}, "pdb.minAvailable (2) must be below the replica count (2)"},
		{"a PDB that blocks every drain under KEDA", merge(keda(map[string]any{"minReplicas": 3}), map[string]any{"pdb": map[string]any{"minAvailable": 3}}), "must be below the replica count (3)"},
		{"a PDB of 100%", map[string]any{"pdb": map[string]any{"minAvailable": "100%"}}, "pdb.minAvailable must be below 100%"},
		{"a PDB of maxUnavailable 0", map[string]any{"pdb": map[string]any{"maxUnavailable": 0}}, "pdb.maxUnavailable is 0"},
		{"SASL without credentials", map[string]any{"kafka": map[string]any{"sasl": map[string]any{"mechanism": "SCRAM-SHA-512"}}}, "give kafka.sasl.existingSecret"},
		{"a TLS CA without a Secret", map[string]any{"kafka": map[string]any{"tls": map[string]any{"enabled": true}}}, "kafka.tls.existingSecret must name the Secret"},
		{"a client certificate without its key", map[string]any{"kafka": map[string]any{"tls": map[string]any{"enabled": true, "existingSecret": "tls", "certKey": "tls.crt"}}}, "a client certificate needs its key"},
		{"SHUTDOWN_TIMEOUT in extraEnv", map[string]any{"extraEnv": []any{map[string]any{"name": "SHUTDOWN_TIMEOUT", "value": "5m"}}}, "SHUTDOWN_TIMEOUT comes from config.shutdownTimeoutSeconds"},
		{"a Kafka setting in extraEnv", map[string]any{"extraEnv": []any{map[string]any{"name": "KAFKA_BROKERS", "value": "x:1"}}}, "extraEnv sets KAFKA_BROKERS"},
	} {
		refused(t, tc)
	}
}

// refusal is values the chart must refuse, with what its error must say.
type refusal struct {
	name   string
	values map[string]any
	want   string
}

// refused runs a subtest that renders the chart with tc's values and expects an error saying
// tc.want.
func refused(t *testing.T, tc refusal) {
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
