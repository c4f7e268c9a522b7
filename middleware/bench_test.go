package middleware_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/sirupsen/logrus"
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
