package middleware_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/middleware"
)

func TestGrowStackPassesMessagesAnswersAndErrorsThrough(t *testing.T) {
	answer := message.NewMessage("answer", []byte("pong"))
	failure := errors.New("transient")
	h := middleware.GrowStack(func(msg *message.Message) ([]*message.Message, error) {
		if string(msg.Payload) == "fail" {
			return nil, failure
		}
		return []*message.Message{answer}, nil
	})
	answers, err := h(message.NewMessage("1", []byte("ping")))
	if err != nil || len(answers) != 1 || answers[0] != answer {
		t.Errorf("got %v, %v; want the handler's answer", answers, err)
	}
	if _, err := h(message.NewMessage("2", []byte("fail"))); !errors.Is(err, failure) {
		t.Errorf("got %v, want the handler's error", err)
	}
}

// deep uses about as much stack as the service's chain, a frame at a time.
//
//go:noinline
func deep(n int) int {
	var frame [256]byte
	frame[n%256] = byte(n)
	if n == 0 {
		return int(frame[0])
	}
	return deep(n-1) + int(frame[n%256])
}

// BenchmarkGrowStack runs a deep handler in a new goroutine per message, as the router does,
// with and without GrowStack in front.
//
//	go test ./middleware -run '^$' -bench GrowStack
func BenchmarkGrowStack(b *testing.B) {
	handler := func(*message.Message) ([]*message.Message, error) {
		deep(24) // about 8 KiB of frames
		return nil, nil
	}
	for _, bc := range []struct {
		name string
		h    message.HandlerFunc
	}{
		{"without", handler},
		{"with", middleware.GrowStack(handler)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := message.NewMessage("1", nil)
			var wg sync.WaitGroup
			for b.Loop() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = bc.h(msg)
				}()
				wg.Wait()
			}
		})
	}
}
