package handlers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/pingpong/pingpong/handlers"
)

const malformedAnswer = `{"message": "Error in the format of the Kafka event"}`

// contractCases is the contract, one row per documented case (docs/contract.md has the same
// table). Each row gives the request and the exact answer bytes, or the malformed reason.
var contractCases = []struct {
	name    string
	request string
	outcome handlers.Outcome
	answer  string // exact bytes of the answer
	key     string // record key of the answer (pong only) / transaction id read
	reason  string // substring of the rejection reason
}{
	{"ping with a string id", `{"transaction-id": "abc-1", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "abc-1", "payload": {"message": "pong"}}`, "abc-1", ""},
	{"compact JSON", `{"transaction-id":"x","payload":{"message":"ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "x", "payload": {"message": "pong"}}`, "x", ""},
	{"numeric id echoed as written", `{"transaction-id": 42, "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": 42, "payload": {"message": "pong"}}`, "42", ""},
	{"numeric id keeps its spelling", `{"transaction-id": 1.50e3, "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": 1.50e3, "payload": {"message": "pong"}}`, "1.50e3", ""},
	{"negative id", `{"transaction-id": -7, "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": -7, "payload": {"message": "pong"}}`, "-7", ""},
	{"huge numeric id", `{"transaction-id": 123456789012345678901234567890, "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": 123456789012345678901234567890, "payload": {"message": "pong"}}`, "123456789012345678901234567890", ""},
	{"id with escapes echoed raw", `{"transaction-id": "a\u0062\"c", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "a\u0062\"c", "payload": {"message": "pong"}}`, `ab"c`, ""},
	{"unicode id", `{"transaction-id": "ñandú-🏓", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "ñandú-🏓", "payload": {"message": "pong"}}`, "ñandú-🏓", ""},
	{"extra fields ignored", `{"transaction-id": "e", "source": "x", "payload": {"message": "ping", "n": [1, 2]}}`,
		handlers.OutcomePong, `{"transaction-id": "e", "payload": {"message": "pong"}}`, "e", ""},
	{"whitespace around the JSON", " \n\t{\"transaction-id\" : \"w\" ,\n \"payload\" : { \"message\" : \"ping\" } }\r\n ",
		handlers.OutcomePong, `{"transaction-id": "w", "payload": {"message": "pong"}}`, "w", ""},
	{"UTF-8 BOM", "\xEF\xBB\xBF" + `{"transaction-id": "bom", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "bom", "payload": {"message": "pong"}}`, "bom", ""},
	{"duplicate key: the last wins", `{"transaction-id": "first", "transaction-id": "last", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "last", "payload": {"message": "pong"}}`, "last", ""},

	{"another message", `{"transaction-id": "n1", "payload": {"message": "hello"}}`,
		handlers.OutcomeNotPing, `{"transaction-id": "n1", "payload": {"message": "Error the message doesn't contain 'ping'"}}`, "n1", "not \"ping\""},
	{"ping is case-sensitive", `{"transaction-id": 5, "payload": {"message": "PING"}}`,
		handlers.OutcomeNotPing, `{"transaction-id": 5, "payload": {"message": "Error the message doesn't contain 'ping'"}}`, "5", ""},
	{"ping is not trimmed", `{"transaction-id": "t", "payload": {"message": " ping "}}`,
		handlers.OutcomeNotPing, `{"transaction-id": "t", "payload": {"message": "Error the message doesn't contain 'ping'"}}`, "t", ""},
	{"empty message", `{"transaction-id": "t", "payload": {"message": ""}}`,
		handlers.OutcomeNotPing, `{"transaction-id": "t", "payload": {"message": "Error the message doesn't contain 'ping'"}}`, "t", ""},

	{"not JSON", `invalid-message`, handlers.OutcomeMalformed, malformedAnswer, "", "not JSON"},
	{"truncated JSON", `{"transaction-id": "t", "payload": {"mess`, handlers.OutcomeMalformed, malformedAnswer, "", "not JSON"},
	{"trailing garbage", `{"transaction-id": "t", "payload": {"message": "ping"}} x`, handlers.OutcomeMalformed, malformedAnswer, "", "not JSON"},
	{"JSON array", `[{"transaction-id": "t", "payload": {"message": "ping"}}]`, handlers.OutcomeMalformed, malformedAnswer, "", "not a JSON object"},
	{"JSON string", `"ping"`, handlers.OutcomeMalformed, malformedAnswer, "", "not a JSON object"},
	{"JSON null", `null`, handlers.OutcomeMalformed, malformedAnswer, "", "not a JSON object"},
	{"empty value (tombstone)", ``, handlers.OutcomeMalformed, malformedAnswer, "", "empty"},
	{"only whitespace", "  \n", handlers.OutcomeMalformed, malformedAnswer, "", "not JSON"},
	{"id missing", `{"payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "transaction-id is missing"},
	{"id key in other case", `{"Transaction-ID": "t", "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "transaction-id is missing"},
	{"id null", `{"transaction-id": null, "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "transaction-id is null"},
	{"id empty string", `{"transaction-id": "", "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "empty string"},
	{"id boolean", `{"transaction-id": true, "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "neither a string nor a number"},
	{"id object", `{"transaction-id": {"a": 1}, "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "neither a string nor a number"},
	{"payload missing", `{"transaction-id": "t"}`, handlers.OutcomeMalformed, malformedAnswer, "t", "payload is missing"},
	{"payload a string", `{"transaction-id": "t", "payload": "ping"}`, handlers.OutcomeMalformed, malformedAnswer, "t", "payload is not a JSON object"},
	{"payload null", `{"transaction-id": "t", "payload": null}`, handlers.OutcomeMalformed, malformedAnswer, "t", "payload is not a JSON object"},
	{"message missing", `{"transaction-id": "t", "payload": {}}`, handlers.OutcomeMalformed, malformedAnswer, "t", "payload.message is missing"},
	{"message a number", `{"transaction-id": "t", "payload": {"message": 1}}`, handlers.OutcomeMalformed, malformedAnswer, "t", "not a string"},
	{"message null", `{"transaction-id": "t", "payload": {"message": null}}`, handlers.OutcomeMalformed, malformedAnswer, "t", "not a string"},
	{"message an array", `{"transaction-id": "t", "payload": {"message": ["ping"]}}`, handlers.OutcomeMalformed, malformedAnswer, "t", "not a string"},
	{"invalid UTF-8", "{\"transaction-id\": \"\xff\xfe\", \"payload\": {\"message\": \"ping\"}}", handlers.OutcomeMalformed, malformedAnswer, "", "not valid UTF-8"},
	{"id of exactly 1 KiB", `{"transaction-id": "` + strings.Repeat("i", 1022) + `", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "` + strings.Repeat("i", 1022) + `", "payload": {"message": "pong"}}`, strings.Repeat("i", 1022), ""},
	{"id above 1 KiB", `{"transaction-id": "` + strings.Repeat("i", 1023) + `", "payload": {"message": "ping"}}`,
		handlers.OutcomeMalformed, malformedAnswer, "", "transaction-id is 1025 bytes, above the maximum of 1024"},
	{"deep nesting", `{"transaction-id": "t", "payload": {"message": "ping", "x": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`,
		handlers.OutcomeMalformed, malformedAnswer, "", "not JSON"},

	// Where the original's Python json.loads differed from RFC 8259 (each verdict checked with
	// Python 3.11; see python_test.go).
	{"UTF-16 with a BOM", "\xff\xfe" + utf16LE(`{"transaction-id": "u16", "payload": {"message": "ping"}}`),
		handlers.OutcomePong, `{"transaction-id": "u16", "payload": {"message": "pong"}}`, "u16", ""},
	{"UTF-32 without a BOM", utf32BE(`{"transaction-id": 32, "payload": {"message": "ping"}}`),
		handlers.OutcomePong, `{"transaction-id": 32, "payload": {"message": "pong"}}`, "32", ""},
	{"UTF-16 of an odd length", "\xff\xfe" + utf16LE(`{"transaction-id": 1}`) + "x",
		handlers.OutcomeMalformed, malformedAnswer, "", "not valid UTF-8, nor UTF-16LE (by its byte order mark)"},
	{"NaN and Infinity where the contract does not read", `{"transaction-id": "f", "score": NaN, "payload": {"message": "ping", "x": [Infinity, -Infinity]}}`,
		handlers.OutcomePong, `{"transaction-id": "f", "payload": {"message": "pong"}}`, "f", ""},
	{"id NaN", `{"transaction-id": NaN, "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "NaN or Infinity"},
	{"id -Infinity", `{"transaction-id": -Infinity, "payload": {"message": "ping"}}`, handlers.OutcomeMalformed, malformedAnswer, "", "NaN or Infinity"},
	{"message Infinity", `{"transaction-id": "t", "payload": {"message": Infinity}}`, handlers.OutcomeMalformed, malformedAnswer, "t", "not a string"},
	{"non-ASCII and DEL echoed as sent", "{\"transaction-id\": \"\u00e9\x7f\", \"payload\": {\"message\": \"ping\"}}",
		handlers.OutcomePong, "{\"transaction-id\": \"\u00e9\x7f\", \"payload\": {\"message\": \"pong\"}}", "\u00e9\x7f", ""},
	{"nesting of 990 levels", `{"transaction-id": "t", "payload": {"message": "ping", "x": ` + strings.Repeat("[", 988) + strings.Repeat("]", 988) + `}}`,
		handlers.OutcomePong, `{"transaction-id": "t", "payload": {"message": "pong"}}`, "t", ""},
	{"nesting of 991 levels", `{"transaction-id": "t", "payload": {"message": "ping", "x": ` + strings.Repeat("[", 989) + strings.Repeat("]", 989) + `}}`,
		handlers.OutcomeMalformed, malformedAnswer, "", "exceeded max depth"},
	{"an integer of 4,300 digits", `{"transaction-id": "t", "payload": {"message": "ping", "n": ` + strings.Repeat("9", 4300) + `}}`,
		handlers.OutcomePong, `{"transaction-id": "t", "payload": {"message": "pong"}}`, "t", ""},
	{"an integer of 4,301 digits", `{"transaction-id": "t", "payload": {"message": "ping", "n": ` + strings.Repeat("9", 4301) + `}}`,
		handlers.OutcomeMalformed, malformedAnswer, "", "4301 digits"},
	{"id with a lone surrogate: key U+FFFD", `{"transaction-id": "\ud800", "payload": {"message": "ping"}}`,
		handlers.OutcomePong, `{"transaction-id": "\ud800", "payload": {"message": "pong"}}`, "\ufffd", ""},
}

// utf16LE and utf32BE encode ASCII text, for the cases in other encodings.
func utf16LE(ascii string) string {
	var b strings.Builder
	for i := 0; i < len(ascii); i++ {
		b.WriteString(string([]byte{ascii[i], 0}))
	}
	return b.String()
}

func utf32BE(ascii string) string {
	var b strings.Builder
	for i := 0; i < len(ascii); i++ {
		b.WriteString(string([]byte{0, 0, 0, ascii[i]}))
	}
	return b.String()
}

// TestSurrogateIDsShareAKey: ids with lone surrogates (which no UTF-8 key can carry) all get the
// key U+FFFD, so their answers share a partition; each answer still echoes its own id, which is
// how clients correlate.
func TestSurrogateIDsShareAKey(t *testing.T) {
	h := handlers.PingPong{}
	var keys, answers []string
	for _, id := range []string{`"\ud800"`, `"\udfff"`, `"\ufffd"`} {
		msgs, err := h.Handle(message.NewMessage("s", []byte(`{"transaction-id": `+id+`, "payload": {"message": "ping"}}`)))
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: %v %v", id, msgs, err)
		}
		keys = append(keys, msgs[0].Metadata.Get(handlers.TransactionIDMetadataKey))
		answers = append(answers, string(msgs[0].Payload))
	}
	if keys[0] != "\ufffd" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("keys %q, want U+FFFD for all three", keys)
	}
	if answers[0] == answers[1] || answers[1] == answers[2] {
		t.Errorf("answers %q do not tell the ids apart", answers)
	}
}

func TestContract(t *testing.T) {
	h := handlers.PingPong{}
	for _, tc := range contractCases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := h.Handle(message.NewMessage("in", []byte(tc.request)))
			if tc.outcome == handlers.OutcomePong {
				if err != nil {
					t.Fatalf("want a pong, got error %v", err)
				}
				if len(msgs) != 1 {
					t.Fatalf("want one answer, got %d", len(msgs))
				}
				if got := string(msgs[0].Payload); got != tc.answer {
					t.Errorf("answer\n got %s\nwant %s", got, tc.answer)
				}
				if got := msgs[0].Metadata.Get(handlers.TransactionIDMetadataKey); got != tc.key {
					t.Errorf("record key %q, want %q", got, tc.key)
				}
				if !json.Valid(msgs[0].Payload) {
					t.Errorf("answer is not valid JSON: %s", msgs[0].Payload)
				}
				return
			}
			var rejection *handlers.Rejection
			if !errors.As(err, &rejection) {
				t.Fatalf("want a rejection (%s), got msgs=%v err=%v", tc.outcome, msgs, err)
			}
			if rejection.Outcome != tc.outcome {
				t.Errorf("outcome %s, want %s (reason %q)", rejection.Outcome, tc.outcome, rejection.Reason)
			}
			if got := string(rejection.Answer); got != tc.answer {
				t.Errorf("answer\n got %s\nwant %s", got, tc.answer)
			}
			if !strings.Contains(rejection.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", rejection.Reason, tc.reason)
			}
			if got := handlers.TransactionIDKey(rejection.TransactionID); got != tc.key {
				t.Errorf("transaction id read %q, want %q", got, tc.key)
			}
		})
	}
}

func TestRequestSizeLimit(t *testing.T) {
	ping := func(size int) []byte {
		base := `{"transaction-id": "big", "payload": {"message": "ping", "pad": ""}}`
		return []byte(strings.Replace(base, `"pad": ""`, `"pad": "`+strings.Repeat("x", size-len(base))+`"`, 1))
	}
	h := handlers.PingPong{MaxRequestBytes: 1000}
	if _, err := h.Handle(message.NewMessage("a", ping(1000))); err != nil {
		t.Fatalf("a request of exactly the maximum is answered: %v", err)
	}
	_, err := h.Handle(message.NewMessage("b", ping(1001)))
	var rejection *handlers.Rejection
	if !errors.As(err, &rejection) || rejection.Outcome != handlers.OutcomeMalformed {
		t.Fatalf("a request above the maximum is malformed, got %v", err)
	}
	if !strings.Contains(rejection.Reason, "1001 bytes, above the maximum of 1000") {
		t.Errorf("reason %q does not give the sizes", rejection.Reason)
	}

	// The default keeps a poison record (original request in a header + answer) under the
	// broker's default 1 MiB message size.
	huge := ping(handlers.DefaultMaxRequestBytes + 1)
	if _, err := (handlers.PingPong{}).Handle(message.NewMessage("c", huge)); err == nil {
		t.Fatal("the default limit applies")
	}
	if _, err := (handlers.PingPong{MaxRequestBytes: -1}).Handle(message.NewMessage("d", bytes.Clone(huge))); err != nil {
		t.Fatalf("-1 means no limit: %v", err)
	}
}

func TestProcessingErrorAnswer(t *testing.T) {
	got := string(handlers.ProcessingErrorAnswer(json.RawMessage(`"t-1"`), `broker said "no"`))
	want := `{"transaction-id": "t-1", "payload": {"message": "Error processing the event: broker said \"no\""}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = string(handlers.ProcessingErrorAnswer(nil, "boom"))
	if want := `{"message": "Error processing the event: boom"}`; got != want {
		t.Errorf("without an id: got %s, want %s", got, want)
	}
}
