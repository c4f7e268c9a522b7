package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// nopPublisher accepts everything: the benchmark measures the chain, not a broker.
type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

// BenchmarkChain runs requests through the whole chain, as the router calls it for each message:
// a ping (answered on .succeeded) and a rejection (answered on .failed through the poison queue).
// The CPU and the allocations per message here are what the service pays on top of Kafka.
//
//	go test ./middleware -run '^$' -bench Chain -benchmem
func BenchmarkChain(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"ping", `{"transaction-id": "a1", "payload": {"message": "ping"}}`},
		{"not-ping", `{"transaction-id": "a1", "payload": {"message": "pang"}}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hs := newHarness(b, pingpong, logrus.WarnLevel)
			hs.chain = hs.chainWith(nopPublisher{})
			body := []byte(bc.body)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := hs.chain(message.NewMessage("in-1", body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// windowSubscriber hands the router n messages with at most window of them unacked, each
// waited for by a goroutine, as a pipelining Kafka subscriber does, and counts the acks.
type windowSubscriber struct {
	n, window int
	acked     sync.WaitGroup
}

func (s *windowSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	slots := make(chan struct{}, s.window)
	go func() {
		for range s.n {
			slots <- struct{}{}
			msg := message.NewMessage("in", []byte(`{"transaction-id": "a1", "payload": {"message": "ping"}}`))
			out <- msg
			go func() {
				<-msg.Acked()
				<-slots
				s.acked.Done()
			}()
		}
	}()
	return out, nil
}

func (*windowSubscriber) Close() error { return nil }

// BenchmarkRouterAlone is the floor the Watermill router sets, whatever the transport and the
// chain: a subscriber with nothing to read and a handler with nothing to do, 256 messages in
// flight (4 partitions of the default window). Its cpu-ns/op is the CPU a message costs in the
// router alone; compare it with the drain benchmark's CPU a request (docs/performance.md).
//
//	go test ./middleware -run '^$' -bench RouterAlone
func BenchmarkRouterAlone(b *testing.B) {
	sub := &windowSubscriber{n: b.N, window: 256}
	sub.acked.Add(b.N)
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	router.AddConsumerHandler("pingpong", "t.requested", sub, func(*message.Message) error { return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()
	b.ResetTimer()
	before := processCPU()
	sub.acked.Wait()
	b.ReportMetric(float64(processCPU()-before)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time, user and system, this process has used so far.
func processCPU() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// BenchmarkChainTraced is BenchmarkChain with tracing off (only the trace context carried), with
// one request in ten sampled, and with every request sampled: its spans made, batched and exported over OTLP/HTTP to a server
// that discards them, so the cost per message includes the export (cpu-ns/op counts the batch
// processor's and the exporter's goroutines too).
//
//	go test ./middleware -run '^$' -bench ChainTraced -benchmem
func BenchmarkChainTraced(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer sink.Close()
	exporter, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sink.URL+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { _ = provider.Shutdown(context.Background()) }()
	tenth := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithSampler(sdktrace.TraceIDRatioBased(0.1)))
	defer func() { _ = tenth.Shutdown(context.Background()) }()
	for _, bc := range []struct {
		name, body string
		tracer     trace.Tracer
	}{
		{"off/ping", `{"transaction-id": "a1", "payload": {"message": "ping"}}`, nil},
		{"off/not-ping", `{"transaction-id": "a1", "payload": {"message": "pang"}}`, nil},
		{"sampled/ping", `{"transaction-id": "a1", "payload": {"message": "ping"}}`, provider.Tracer("bench")},
		{"sampled/not-ping", `{"transaction-id": "a1", "payload": {"message": "pang"}}`, provider.Tracer("bench")},
		{"tenth-sampled/ping", `{"transaction-id": "a1", "payload": {"message": "ping"}}`, tenth.Tracer("bench")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hs := newHarness(b, pingpong, logrus.WarnLevel)
			hs.chain = tracedChainWith(hs, nopPublisher{}, bc.tracer)
			body := []byte(bc.body)
			b.ReportAllocs()
			before := processCPU()
			for b.Loop() {
				if _, err := hs.chain(message.NewMessage("in-1", body)); err != nil {
					b.Fatal(err)
				}
			}
			_ = provider.ForceFlush(context.Background())
			b.ReportMetric(float64(processCPU()-before)/float64(b.N), "cpu-ns/op")
		})
	}
}
