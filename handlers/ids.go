package handlers

import (
	"encoding/hex"
	"math/rand/v2"
)

// NewID returns a random 128-bit id as 32 hex digits, for correlation ids and message UUIDs.
// These ids tell messages apart; nothing depends on them being unguessable, so they come from
// math/rand/v2 (a per-thread ChaCha8 generator) rather than crypto/rand or shortuuid, which cost
// a tenth of the service's CPU per message.
func NewID() string {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(hi>>(8*i)), byte(lo>>(8*i))
	}
	// Encoded on the stack: hex.EncodeToString allocates its bytes and then the string.
	var text [32]byte
	hex.Encode(text[:], b[:])
	return string(text[:])
}
