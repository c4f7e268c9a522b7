package handlers

import "encoding/json"

// Rejection is a permanent answer on .failed: retrying cannot change it. It is returned as the
// handler's error so that the poison middleware publishes it with the headers that say why.
type Rejection struct {
	Outcome Outcome
	// Reason is for operators: it goes in the reason_poisoned header and the logs.
	Reason string
	// TransactionID is the raw id, when one could be read.
	TransactionID json.RawMessage
	// Answer is the record value published on .failed.
	Answer []byte
}

func (r *Rejection) Error() string { return string(r.Outcome) + ": " + r.Reason }

func malformed(id json.RawMessage, reason string) *Rejection {
	return &Rejection{Outcome: OutcomeMalformed, Reason: reason, TransactionID: id, Answer: MalformedAnswer()}
}

func notPing(id json.RawMessage) *Rejection {
	return &Rejection{
		Outcome:       OutcomeNotPing,
		Reason:        "the message is not \"ping\"",
		TransactionID: id,
		Answer:        NotPingAnswer(id),
	}
}
