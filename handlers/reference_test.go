package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// The decoder before the single-pass scanner, on encoding/json maps: the reference that
// Decode must agree with on every input.

func referenceDecode(body []byte, maxBytes int) (Request, error) {
	if len(body) == 0 {
		return Request{}, malformed(nil, "the request is empty (a tombstone or an empty value)")
	}
	if maxBytes > 0 && len(body) > maxBytes {
		return Request{}, malformed(nil, fmt.Sprintf("the request is %d bytes, above the maximum of %d", len(body), maxBytes))
	}
	body, notText := requestText(body) // held to Python by TestRequestTextMatchesPython
	if notText != "" {
		return Request{}, malformed(nil, notText)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(body) {
			return Request{}, malformed(nil, "the request is not JSON")
		}
		return Request{}, malformed(nil, "the request is not a JSON object")
	}

	// Maps, not a struct: encoding/json matches struct fields case-insensitively, and the
	// contract's keys are exact ("Transaction-ID" is not "transaction-id").
	var envelope map[string]json.RawMessage
	if err := json.Unmarshal(body, &envelope); err != nil {
		return Request{}, malformed(nil, "the request is not JSON: "+referenceJSONProblem(err))
	}

	id, err := referenceTransactionID(envelope)
	if err != nil {
		return Request{}, err
	}
	rawPayload, ok := envelope["payload"]
	if !ok {
		return Request{}, malformed(id, "payload is missing")
	}
	var payload map[string]json.RawMessage
	if rawPayload[0] != '{' || json.Unmarshal(rawPayload, &payload) != nil {
		return Request{}, malformed(id, "payload is not a JSON object")
	}
	rawMessage, ok := payload["message"]
	if !ok {
		return Request{}, malformed(id, "payload.message is missing")
	}
	var message string
	if rawMessage[0] != '"' || json.Unmarshal(rawMessage, &message) != nil {
		return Request{}, malformed(id, "payload.message is not a string")
	}
	return Request{TransactionID: id, Message: message}, nil
}

func referenceTransactionID(envelope map[string]json.RawMessage) (json.RawMessage, error) {
	raw, ok := envelope["transaction-id"]
	if !ok {
		return nil, malformed(nil, "transaction-id is missing")
	}
	switch c := raw[0]; {
	case c == '"':
		if string(raw) == `""` {
			return nil, malformed(nil, "transaction-id is an empty string")
		}
		return raw, nil
	case c == '-' || ('0' <= c && c <= '9'):
		return raw, nil
	case c == 'n':
		return nil, malformed(nil, "transaction-id is null")
	default:
		return nil, malformed(nil, "transaction-id is neither a string nor a number")
	}
}

// jsonProblem keeps the parser's words but not the Go type names it sometimes adds.
func referenceJSONProblem(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("%s (at byte %d)", syntax.Error(), syntax.Offset)
	}
	return err.Error()
}

// seeds are the documented edge cases and some shapes around them.
var seeds = []string{
	`{"transaction-id": "a", "payload": {"message": "ping"}}`,
	`{"transaction-id": 1.5e3, "payload": {"message": "pong", "x": [1, {"y": null}]}}`,
	`{"transaction-id": "a\u0062\"c", "payload": {"message": "p\u0069ng"}}`,
	`{"transaction-id": null, "payload": {"message": "ping"}}`,
	`{"transaction-id": "", "payload": {}}`,
	`{"transaction-id": true, "payload": "x"}`,
	`{"Transaction-ID": "t", "payload": {"message": "ping"}}`,
	`{"transaction-\u0069d": "t", "payload": {"message": "ping"}}`,
	`{"transaction-id": "t", "transaction-id": 2, "payload": {"message": 1}}`,
	"\xef\xbb\xbf{\"transaction-id\": 1, \"payload\": {\"message\": \"ping\"}}",
	`[1, 2]`, `"ping"`, `null`, ``, `  `, `{`, `{"a": }`, `{"a" 1}`, `{"a": 1,}`, `01`, `-`, `1.`, `1e`, `.5`,
	`{"a": "\x"}`, `{"a": "\u12"}`, "{\"a\": \"\t\"}", `{} {}`, `{} x`, `nul`, `tru`, `{"a": [1 2]}`,
	`{"transaction-id": "t", "payload": {"message": "ping"}}` + strings.Repeat(" ", 3),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat("[", 900) + strings.Repeat("]", 900),
	"{\"transaction-id\": \"\xff\", \"payload\": {\"message\": \"ping\"}}",
}

// pythonOnly tells whether a document may be one on which the original's Python json and
// encoding/json disagree: NaN or Infinity, nesting deeper than maxDepth, an integer longer than
// maxIntegerDigits. It over-approximates (a "NaN" inside a string counts); those documents are
// held to Python by TestScannerMatchesPython instead.
func pythonOnly(doc []byte) bool {
	if bytes.Contains(doc, []byte("NaN")) || bytes.Contains(doc, []byte("Infinity")) ||
		bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) > maxDepth {
		return true
	}
	run := 0
	for _, c := range doc {
		if '0' <= c && c <= '9' {
			if run++; run > maxIntegerDigits {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// FuzzScannerMatchesEncodingJSON: the scanner accepts exactly what encoding/json accepts, where
// the original's Python json agrees with it.
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !utf8.Valid(doc) || pythonOnly(doc) {
			return // Decode rejects invalid UTF-8 before scanning
		}
		_, _, err := fields(doc)
		if got, want := err == nil, json.Valid(doc); got != want {
			t.Fatalf("scanner says valid=%v (%v), encoding/json says %v, for %q", got, err, want, doc)
		}
	})
}

// FuzzDecodeMatchesReference: Decode reads the same request, or rejects for the same reason,
// as the map-based decoder it replaced.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if text, _ := requestText(doc); pythonOnly(text) {
			return
		}
		got, gotErr := Decode(bytes.Clone(doc), 1<<20)
		want, wantErr := referenceDecode(bytes.Clone(doc), 1<<20)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: Decode %v / %v, reference %v / %v", doc, got, gotErr, want, wantErr)
		}
		if gotErr == nil {
			if !bytes.Equal(got.TransactionID, want.TransactionID) || got.Message != want.Message {
				t.Fatalf("%q: Decode %q %q, reference %q %q", doc, got.TransactionID, got.Message, want.TransactionID, want.Message)
			}
			return
		}
		var g, w *Rejection
		if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) {
			t.Fatalf("%q: not rejections: %v, %v", doc, gotErr, wantErr)
		}
		const notJSON = "the request is not JSON"
		if strings.HasPrefix(w.Reason, notJSON) != strings.HasPrefix(g.Reason, notJSON) ||
			!strings.HasPrefix(w.Reason, notJSON) && g.Reason != w.Reason {
			t.Fatalf("%q: reason %q, reference %q", doc, g.Reason, w.Reason)
		}
		if !bytes.Equal(g.TransactionID, w.TransactionID) || g.Outcome != w.Outcome {
			t.Fatalf("%q: rejection %+v, reference %+v", doc, g, w)
		}
	})
}

var _ = fmt.Sprint

// The texts before their fast paths, on encoding/json alone.

func referenceQuote(s string) []byte {
	quoted, _ := json.Marshal(s)
	return quoted
}

func referenceKey(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
	}
	return string(raw)
}

var textSeeds = []string{
	"", PongText, NotPingText, MalformedText, ProcessingErrorText + "broker unavailable", "a\"b", `a\b`, "<&>",
	"\x00", "\x7f", "ünï", "\u2028", "\xff", `\u0041`, "tab\there",
}

// FuzzTextsMatchEncodingJSON: quote writes every text as json.Marshal does, and TransactionIDKey
// reads every raw id, quoted by encoding/json or not, as json.Unmarshal does.
func FuzzTextsMatchEncodingJSON(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := quote(s), referenceQuote(s); !bytes.Equal(got, want) {
			t.Fatalf("quote(%q) = %s, encoding/json %s", s, got, want)
		}
		for _, raw := range []json.RawMessage{referenceQuote(s), json.RawMessage(`"` + s + `"`), json.RawMessage(s)} {
			if got, want := TransactionIDKey(raw), referenceKey(raw); got != want {
				t.Fatalf("TransactionIDKey(%q) = %q, encoding/json %q", raw, got, want)
			}
		}
	})
}
