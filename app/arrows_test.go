package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The arrows point inward: Kafka and the operator tools at the edge depend on the decisions
// (handlers, middleware) and on the formats they share (poison, source), never the other way,
// and the decisions import no Kafka client. go list -deps follows every import, direct or not.
func TestPackagesImportOnlyInward(t *testing.T) {
	const module = "github.com/pingpong/pingpong/"
	kafkaClients := []string{"github.com/twmb/franz-go/", "github.com/IBM/sarama", "github.com/ThreeDotsLabs/watermill-kafka/"}
	rules := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{"app/transport", []string{module + "middleware", module + "handlers"}, "the transport takes the record key and the message source as values, not from the chain or the handler"},
		{"app/dlq", []string{module + "middleware"}, "the operator tools read the poison format from package poison"},
		{"poison", append([]string{module, "github.com/ThreeDotsLabs/"}, kafkaClients...), "the poison format depends on nothing"},
		{"source", append([]string{module}, kafkaClients...), "a message's source is described without a Kafka client"},
		{"middleware", kafkaClients, "the chain decides without a Kafka client"},
		{"handlers", kafkaClients, "the handler decides without a Kafka client"},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == module+r.pkg {
				continue
			}
			for _, f := range r.forbidden {
				if dep == f || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep, f+"/")) {
					t.Errorf("%s imports %s: %s", r.pkg, dep, r.why)
				}
			}
		}
	}
}
