package middleware

import "github.com/ThreeDotsLabs/watermill/message"

// GrowStack grows the handler goroutine's stack once, at the top of the chain, to the size the
// chain needs. The router runs every message in a new goroutine whose stack starts small; the
// chain (about a dozen middleware frames, the handler, the publisher, the Kafka client) needs
// more, and Go grows a stack by copying it to one twice the size, walking every frame on it.
// Growing it deep in the chain, where it first runs out, costs a copy of all those frames, one
// or two times per message: 10% of the service's CPU in the drain benchmark. Growing it here,
// where the stack is nearly empty, costs a copy of two frames (docs/performance.md).
// CockroachDB's growstack package does the same for its storage code paths.
//
// Add it to the router first, before any other middleware.
func GrowStack(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		growStack()
		return h(msg)
	}
}

// chainStackBytes is about the stack the chain uses below GrowStack: with 4 KiB the drain
// benchmark's stack growth left the profile, and more bought nothing but memory.
const chainStackBytes = 4 << 10

// growStack has a frame of chainStackBytes, so calling it makes the runtime grow the stack to fit
// it. The frame is declared in a branch that never runs: the compiler keeps it in the frame (it
// cannot prove the branch dead) but zeroes it only inside the branch, so the call costs the
// growth and not 8 KiB of stores. noinline keeps the frame its own.
//
//go:noinline
func growStack() {
	if useFrame {
		var frame [chainStackBytes]byte
		keep(frame[:])
	}
}

// useFrame is never set; it stands for a condition the compiler cannot decide.
var useFrame = false

// keep stops the compiler from dropping the frame as unused.
//
//go:noinline
func keep([]byte) {}
