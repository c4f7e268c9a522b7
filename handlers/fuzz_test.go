package handlers_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/handlers"
)

// FuzzHandle feeds the handler (and so the decoder) any bytes, seeded with every documented edge
// case of the contract, and checks what must hold whatever the input:
//
//   - it never panics;
//   - a pong comes only for a well-formed ping: one answer, valid JSON, echoing the id exactly as
//     sent, keyed by the id's text;
//   - everything else is a *Rejection with a reason and one of the two rejection answers (the
//     malformed one, or the not-ping one echoing the id), both valid JSON;
//   - no answer is larger than an id allows, so every answer can be published;
//   - the answer for processing that failed for good is valid JSON too.
//
// CI runs it for a bounded time: go test ./handlers -run '^$' -fuzz FuzzHandle -fuzztime 20s
func FuzzHandle(f *testing.F) {
	for _, tc := range contractCases {
		f.Add([]byte(tc.request))
	}
	for _, seed := range []string{
		"", "\xEF\xBB\xBF", "{", "}", "[]", `{"transaction-id": 1}`, `{"transaction-id": -0.0e-0, "payload": {"message": "ping"}}`,
		`{"transaction-id": "\ud800", "payload": {"message": "ping"}}`, `{"transaction-id": "a", "payload": {"message": "p\u0069ng"}}`,
		`{"transaction-id": 1, "payload": {"message": "ping"}, "payload": {"message": "pang"}}`, "{\"transaction-id\": \"\x00\", \"payload\": {\"message\": \"ping\"}}",
	} {
		f.Add([]byte(seed))
	}
	h := handlers.PingPong{MaxRequestBytes: 64 * 1024}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := h.Handle(message.NewMessage("fuzz", body))
		req, decodeErr := handlers.Decode(body, 64*1024)
		if err == nil {
			checkPong(t, body, req, decodeErr, msgs)
			return
		}
		var rejection *handlers.Rejection
		if !errors.As(err, &rejection) {
			t.Fatalf("an error that is not a rejection: %v", err)
		}
		if msgs != nil {
			t.Fatalf("answers with a rejection: %v", msgs)
		}
		checkRejection(t, body, req, decodeErr, rejection)
	})
}

func checkPong(t *testing.T, body []byte, req handlers.Request, decodeErr error, msgs []*message.Message) {
	t.Helper()
	if decodeErr != nil || req.Message != "ping" {
		t.Fatalf("a pong for %q, which decodes to %+v, %v", body, req, decodeErr)
	}
	if !utf8.Valid(msgs[0].Payload) { // whatever the request's encoding, answers are UTF-8
		t.Fatalf("a pong %q in invalid UTF-8, for %q", msgs[0].Payload, body)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d answers to a ping", len(msgs))
	}
	answer := msgs[0].Payload
	var decoded struct {
		ID      json.RawMessage `json:"transaction-id"`
		Payload struct {
			Message string `json:"message"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(answer, &decoded); err != nil {
		t.Fatalf("the pong %q is not valid JSON: %v", answer, err)
	}
	if string(decoded.ID) != string(req.TransactionID) || decoded.Payload.Message != "pong" {
		t.Fatalf("the pong %q does not echo the id %s", answer, req.TransactionID)
	}
	if got := msgs[0].Metadata.Get(handlers.TransactionIDMetadataKey); got != handlers.TransactionIDKey(req.TransactionID) {
		t.Fatalf("the pong's key %q, want %q", got, handlers.TransactionIDKey(req.TransactionID))
	}
	checkBounded(t, answer)
}

func checkRejection(t *testing.T, body []byte, req handlers.Request, decodeErr error, r *handlers.Rejection) {
	t.Helper()
	if strings.TrimSpace(r.Reason) == "" {
		t.Fatalf("a rejection of %q without a reason", body)
	}
	switch r.Outcome {
	case handlers.OutcomeMalformed:
		if string(r.Answer) != string(handlers.MalformedAnswer()) {
			t.Fatalf("malformed answer %q", r.Answer)
		}
		if decodeErr == nil {
			t.Fatalf("%q decodes, yet is malformed: %s", body, r.Reason)
		}
	case handlers.OutcomeNotPing:
		if decodeErr != nil || req.Message == "ping" {
			t.Fatalf("not ping for %q, which decodes to %+v, %v", body, req, decodeErr)
		}
		if string(r.Answer) != string(handlers.NotPingAnswer(req.TransactionID)) {
			t.Fatalf("not-ping answer %q does not echo the id %s", r.Answer, req.TransactionID)
		}
	default:
		t.Fatalf("outcome %q for %q: a rejection is malformed or not ping", r.Outcome, body)
	}
	if !json.Valid(r.Answer) {
		t.Fatalf("the answer %q is not valid JSON", r.Answer)
	}
	checkBounded(t, r.Answer)
	if failed := handlers.ProcessingErrorAnswer(r.TransactionID, r.Reason); !json.Valid(failed) {
		t.Fatalf("the processing error answer %q is not valid JSON", failed)
	}
}

// checkBounded: an answer is at most the id and the longest text, whatever the request.
func checkBounded(t *testing.T, answer []byte) {
	t.Helper()
	if limit := handlers.MaxTransactionIDBytes + 128; len(answer) > limit {
		t.Fatalf("a %d-byte answer, above %d", len(answer), limit)
	}
}
