package handlers

import (
	"encoding/json"
	"fmt"
)

// The answers' texts, as the original service wrote them.
const (
	PongText            = "pong"
	NotPingText         = "Error the message doesn't contain 'ping'"
	MalformedText       = "Error in the format of the Kafka event"
	ProcessingErrorText = "Error processing the event: "
)

// Outcome is what became of a request. The values are label values of the
// pingpong_requests_total metric and of the pingpong_outcome poison header.
type Outcome string

const (
	OutcomePong      Outcome = "pong"      // answered on .succeeded
	OutcomeNotPing   Outcome = "not_ping"  // well-formed, another message: answered on .failed
	OutcomeMalformed Outcome = "malformed" // not a request: answered on .failed
	OutcomeError     Outcome = "error"     // processing failed for good (retries exhausted, panic): poisoned on .failed
)

// The answers are written with the separators of Python's json.dumps (", " and ": "), so that
// they are the original service's bytes except for the id, which is copied exactly as it came
// where the original re-wrote it (see docs/contract.md, "Same value, not always same bytes").

// PongAnswer is the answer to a ping.
func PongAnswer(id json.RawMessage) []byte { return idAnswer(id, PongText) }

// NotPingAnswer is the answer to a well-formed request whose message is not "ping".
func NotPingAnswer(id json.RawMessage) []byte { return idAnswer(id, NotPingText) }

// MalformedAnswer is the answer to anything that is not a well-formed request.
func MalformedAnswer() []byte { return []byte(`{"message": "` + MalformedText + `"}`) }

// ProcessingErrorAnswer is the answer when processing failed for good. Without an id (the request
// could not be read) it has the malformed answer's shape.
func ProcessingErrorAnswer(id json.RawMessage, reason string) []byte {
	text := ProcessingErrorText + reason
	if len(id) == 0 {
		return fmt.Appendf(nil, `{"message": %s}`, quote(text))
	}
	return idAnswer(id, text)
}

func idAnswer(id json.RawMessage, text string) []byte {
	answer := make([]byte, 0, len(id)+len(text)+48)
	answer = append(answer, `{"transaction-id": `...)
	answer = append(answer, id...)
	answer = append(answer, `, "payload": {"message": `...)
	answer = appendQuoted(answer, text)
	return append(answer, "}}"...)
}

// quote writes s as encoding/json does.
func quote(s string) []byte { return appendQuoted(nil, s) }

// appendQuoted appends s to dst as encoding/json writes it. The answers' texts are plain ASCII,
// which needs no escaping; anything else goes through encoding/json, whose escaping (of <, > and
// &, of U+2028, of invalid UTF-8) the answers keep.
func appendQuoted(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always marshals
			return append(dst, quoted...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
