package middleware_test

import (
	"testing"

	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/pingpong/pingpong/poison"
)

// Package poison spells Watermill's PoisonQueue and correlation keys out rather than import
// Watermill; they must stay Watermill's, which readers of .failed know.
func TestPoisonHeadersAreWatermillsKeys(t *testing.T) {
	for ours, watermills := range map[string]string{
		poison.HeaderReason:        wmmiddleware.ReasonForPoisonedKey,
		poison.HeaderTopic:         wmmiddleware.PoisonedTopicKey,
		poison.HeaderHandler:       wmmiddleware.PoisonedHandlerKey,
		poison.HeaderSubscriber:    wmmiddleware.PoisonedSubscriberKey,
		poison.HeaderCorrelationID: wmmiddleware.CorrelationIDMetadataKey,
	} {
		if ours != watermills {
			t.Errorf("poison header %q, Watermill's key is %q", ours, watermills)
		}
	}
}
