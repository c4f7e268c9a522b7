package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
)

// jaegerInstall says how to get the Jaeger v2 binary the test runs (.ci/run builds it so). Its
// module has replace directives, so go install refuses it: it is built in its own directory.
const jaegerInstall = `dir=$(go mod download -json github.com/jaegertracing/jaeger@v1.75.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') && (cd "$dir" && go build -o "$(go env GOPATH)/bin/jaeger" ./cmd/jaeger)`

// jaegerConfig is Jaeger v2 with in-memory storage, an OTLP receiver and the query API, each on
// a loopback port the test picked, and none of the default ports (its own metrics on 8888).
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
`

type jaeger struct {
	query, otlpGRPC, otlpHTTP string
}

func startJaeger(t *testing.T) jaeger {
	t.Helper()
	bin := servicetest.RequireTool(t, "jaeger", jaegerInstall)
	j := jaeger{query: freeAddr(t), otlpGRPC: freeAddr(t), otlpHTTP: freeAddr(t)}
	cfg := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, j.query, freeAddr(t), j.otlpGRPC, j.otlpHTTP), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	output := &servicetest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("jaeger output:\n%s", output.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("jaeger exited at start:\n%s", output.String())
		default:
		}
		if resp, err := http.Get("http://" + j.query + "/api/services"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger's query API did not answer on %s within 60s:\n%s", j.query, output.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jaegerTrace is the part of Jaeger's query API answer (GET /api/traces/<id>) the test reads.
type jaegerTrace struct {
	Data []struct {
		Spans []struct {
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			ProcessID     string `json:"processID"`
			References    []struct {
				RefType string `json:"refType"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			Tags []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

func (j jaeger) trace(traceID string) (jaegerTrace, error) {
	var tr jaegerTrace
	resp, err := http.Get("http://" + j.query + "/api/traces/" + traceID)
	if err != nil {
		return tr, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tr, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return tr, json.NewDecoder(resp.Body).Decode(&tr)
}

// A traced request from an independent client: the service, pointed at a real Jaeger by
// OTEL_EXPORTER_OTLP_ENDPOINT alone, exports its receive, process and send spans into the
// request's trace, and the answer's traceparent names its send span in that trace. Over both
// OTLP protocols.
func TestTraceReachesJaeger(t *testing.T) {
	j := startJaeger(t)
	for _, tc := range []struct{ protocol, endpoint string }{
		{"http/protobuf", "http://" + j.otlpHTTP},
		{"grpc", "http://" + j.otlpGRPC},
	} {
		t.Run(strings.ReplaceAll(tc.protocol, "/", "-"), func(t *testing.T) {
			cluster := servicetest.Cluster(t, 1)
			brokers := cluster.ListenAddrs()
			serviceName := "pingpong-e2e-" + strings.ReplaceAll(tc.protocol, "/", "-")
			p := startBinary(t, append(serviceEnv(brokers),
				"OTEL_EXPORTER_OTLP_ENDPOINT="+tc.endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL="+tc.protocol,
				"OTEL_SERVICE_NAME="+serviceName,
				"OTEL_BSP_SCHEDULE_DELAY=100",
			))
			waitForLine(t, p, "Ready")

			traceID, parentID := randomHex(t, 16), randomHex(t, 8)
			client := servicetest.Client(t, brokers, kgo.ConsumeTopics(servicetest.Topics.Succeeded), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			request := &kgo.Record{Topic: servicetest.Topics.Requested, Key: []byte("t1"),
				Value:   []byte(`{"transaction-id": "t1", "payload": {"message": "ping"}}`),
				Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceID + "-" + parentID + "-01")}}}
			if err := client.ProduceSync(context.Background(), request).FirstErr(); err != nil {
				t.Fatal(err)
			}
			var answerParent string
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for answerParent == "" && ctx.Err() == nil {
				client.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					for _, h := range r.Headers {
						if h.Key == "traceparent" {
							parts := strings.Split(string(h.Value), "-")
							if len(parts) != 4 || parts[1] != traceID {
								t.Fatalf("the answer's traceparent %s is not in the request's trace %s", h.Value, traceID)
							}
							answerParent = parts[2]
						}
					}
				})
			}
			if answerParent == "" {
				t.Fatal("no answer with a traceparent within 30s")
			}

			// The spans arrive after the batch processor's delay: ask until all three are there.
			var tr jaegerTrace
			var err error
			names := map[string]string{} // span id -> operation name
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				tr, err = j.trace(traceID)
				if err == nil && len(tr.Data) == 1 {
					for _, s := range tr.Data[0].Spans {
						names[s.SpanID] = s.OperationName
					}
					if len(names) >= 3 {
						break
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			if len(tr.Data) != 1 || len(names) < 3 {
				t.Fatalf("jaeger has %d spans of trace %s (err %v): %v", len(names), traceID, err, names)
			}
			parents := map[string]string{}
			for _, s := range tr.Data[0].Spans {
				if got := tr.Data[0].Processes[s.ProcessID].ServiceName; got != serviceName {
					t.Errorf("span %s of service %q, want %q (OTEL_SERVICE_NAME)", s.OperationName, got, serviceName)
				}
				for _, r := range s.References {
					if r.RefType == "CHILD_OF" {
						parents[s.SpanID] = r.SpanID
					}
				}
			}
			send := answerParent
			if names[send] != "send "+servicetest.Topics.Succeeded {
				t.Fatalf("the answer's parent span %s is %q in jaeger, want the send span; spans %v", send, names[send], names)
			}
			process := parents[send]
			receive := parents[process]
			if names[process] != "process "+servicetest.Topics.Requested || names[receive] != "receive "+servicetest.Topics.Requested {
				t.Errorf("send's parent is %q and its parent %q, want process and receive; spans %v", names[process], names[receive], names)
			}
			if parents[receive] != parentID {
				t.Errorf("receive's parent %s, want the request's span %s", parents[receive], parentID)
			}
		})
	}
}

// waitForLine waits until the process has written a line containing text.
func waitForLine(t *testing.T, p *servicetest.Process, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.Output.String(), text) {
		if _, exited := p.Exited(); exited || time.Now().After(deadline) {
			t.Fatalf("pingpong did not say %q", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
