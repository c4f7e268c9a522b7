// Package poison is the format of the poison records on <prefix>.failed: the headers that say
// why a request failed and what it was, and the reason codes. The service writes it (package
// middleware) and the operator tools read it (app/dlq); other teams read it too, so it is a
// stable format, described header by header in docs/poison-queue.md. It imports nothing, so
// that both sides depend on the format and not on each other.
package poison

// The poison headers: every record on .failed carries them. The first four are Watermill's own
// PoisonQueue keys (message/router/middleware), with the meaning Watermill gives them; package
// middleware's tests hold them equal.
const (
	HeaderReason     = "reason_poisoned"     // why, for people
	HeaderTopic      = "topic_poisoned"      // the source topic
	HeaderHandler    = "handler_poisoned"    // the router handler that failed
	HeaderSubscriber = "subscriber_poisoned" // the subscriber that read the request

	HeaderReasonCode = "pingpong_reason_code"      // a ReasonCode, for machines
	HeaderPartition  = "pingpong_source_partition" // the source record's partition
	HeaderOffset     = "pingpong_source_offset"    // the source record's offset
	// HeaderLastOffset is set on the poison record of an undecodable batch: HeaderOffset is the
	// batch's first offset, this its last.
	HeaderLastOffset = "pingpong_source_last_offset"
	// HeaderOriginalBatch is set on the poison record of an undecodable batch: the batch's
	// bytes as the broker stores them, when they fit the bound on the request bytes carried.
	HeaderOriginalBatch   = "pingpong_original_batch"
	HeaderSourceTimestamp = "pingpong_source_timestamp" // the source record's timestamp, RFC 3339
	HeaderAttempts        = "pingpong_attempts"         // how often the handler ran
	HeaderFailedAt        = "pingpong_failed_at"        // when the record was poisoned, RFC 3339
	HeaderOriginal        = "pingpong_original"         // the request's bytes, exactly as read
	HeaderOriginalKey     = "pingpong_original_key"     // the request's record key, when it had one
	// HeaderOriginalOmitted replaces HeaderOriginal when the request was too large to carry;
	// it says why, and what else (its key, some headers) was left out.
	HeaderOriginalOmitted = "pingpong_original_omitted"

	// Set by `pingpong dlq replay` on the requests it republishes, and carried over to the poison
	// record when a replayed request fails again, so that replays can be bounded.
	HeaderReplayCount  = "pingpong_replay_count"
	HeaderReplayedFrom = "pingpong_replayed_from" // "<topic>:<partition>:<offset>" of the poison record
	// HeaderCorrelationID is Watermill's correlation id key (CorrelationIDMetadataKey).
	HeaderCorrelationID = "correlation_id"
)

// ReasonCode classifies why a record is on .failed.
type ReasonCode string

const (
	ReasonMalformed        ReasonCode = "malformed"         // not a request
	ReasonNotPing          ReasonCode = "not_ping"          // a request whose message is not "ping"
	ReasonRetriesExhausted ReasonCode = "retries_exhausted" // a transient failure that outlasted the retries
	ReasonPanic            ReasonCode = "panic"             // the handler panicked
	// ReasonUndecodableBatch: a whole record batch that could not be decoded within the memory
	// budget (source.UndecodableBatch); one poison record stands for all of its offsets.
	ReasonUndecodableBatch ReasonCode = "undecodable_batch"
)

// ReasonCodes lists every ReasonCode.
var ReasonCodes = []ReasonCode{ReasonMalformed, ReasonNotPing, ReasonRetriesExhausted, ReasonPanic, ReasonUndecodableBatch}
