package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DefaultMaxRequestBytes bounds a request's size. A poison record carries the original request in
// a header next to its answer, so a request must stay well below the broker's default
// message.max.bytes (1 MiB) for its poison record to be publishable.
const DefaultMaxRequestBytes = 512 * 1024

// MaxTransactionIDBytes bounds a transaction id, as written in the request. An id is echoed in the
// answer, is its record key and one of its headers: an id of hundreds of kilobytes would make
// the answer larger than the broker accepts, and so unanswerable. 1 KiB is far above any UUID,
// ULID or order number.
const MaxTransactionIDBytes = 1024

// Request is a decoded, well-formed request.
type Request struct {
	// TransactionID is the id exactly as it was sent: the raw JSON text of a string or a number.
	TransactionID json.RawMessage
	// Message is payload.message.
	Message string
}

// Key is the transaction id as a record key: a string id without its quotes and escapes, a
// numeric id as written.
func (r Request) Key() string { return TransactionIDKey(r.TransactionID) }

// TransactionIDKey turns a raw JSON id (a string or a number) into its text.
func TransactionIDKey(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		if text, plain := plainString(raw); plain {
			return text
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
	}
	return string(raw)
}

// plainString reads a JSON string without escapes, control characters or non-ASCII bytes (most
// ids) without encoding/json; false sends the others there.
func plainString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(inner), true
}

// Decode reads a request. A request it cannot accept comes back as a *Rejection with the
// malformed outcome, a reason an operator can act on, and whatever transaction id could be read.
// maxBytes <= 0 means no limit.
func Decode(body []byte, maxBytes int) (Request, error) {
	if len(body) == 0 {
		return Request{}, malformed(nil, "the request is empty (a tombstone or an empty value)")
	}
	if maxBytes > 0 && len(body) > maxBytes {
		return Request{}, malformed(nil, fmt.Sprintf("the request is %d bytes, above the maximum of %d", len(body), maxBytes))
	}
	body, notText := requestText(body)
	if notText != "" {
		return Request{}, malformed(nil, notText)
	}
	// Keys are matched exactly, as the original did: "Transaction-ID" is not "transaction-id".
	top, isObject, err := fields(body, "transaction-id", "payload")
	switch {
	case err != nil:
		return Request{}, malformed(nil, "the request is not JSON: "+err.Error())
	case !isObject:
		return Request{}, malformed(nil, "the request is not a JSON object")
	}
	id, err := transactionID(top[0])
	if err != nil {
		return Request{}, err
	}
	rawPayload := top[1]
	if rawPayload == nil {
		return Request{}, malformed(id, "payload is missing")
	}
	if rawPayload[0] != '{' {
		return Request{}, malformed(id, "payload is not a JSON object")
	}
	inner, _, _ := fields(rawPayload, "message") // valid already: it is part of body
	rawMessage := inner[0]
	if rawMessage == nil {
		return Request{}, malformed(id, "payload.message is missing")
	}
	message, ok := jsonString(rawMessage)
	if !ok {
		return Request{}, malformed(id, "payload.message is not a string")
	}
	return Request{TransactionID: id, Message: message}, nil
}

// jsonString decodes a raw JSON value that must be a string.
func jsonString(raw []byte) (string, bool) {
	if raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// transactionID accepts a non-empty string or a number: the two kinds a client can correlate an
// answer with and the two kinds a record key can be made of.
func transactionID(raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil {
		return nil, malformed(nil, "transaction-id is missing")
	}
	if len(raw) > MaxTransactionIDBytes {
		return nil, malformed(nil, fmt.Sprintf("transaction-id is %d bytes, above the maximum of %d", len(raw), MaxTransactionIDBytes))
	}
	switch c := raw[0]; {
	case c == '"':
		if string(raw) == `""` {
			return nil, malformed(nil, "transaction-id is an empty string")
		}
		return raw, nil
	case c == '-' && len(raw) > 1 && raw[1] == 'I', c == 'I', c == 'N':
		// Python's json reads NaN and ±Infinity, and the original echoed them: as an answer
		// that is not JSON, which no strict client can parse. Not a number, then.
		return nil, malformed(nil, "transaction-id is NaN or Infinity, which JSON has no number for")
	case c == '-' || ('0' <= c && c <= '9'):
		return raw, nil
	case c == 'n':
		return nil, malformed(nil, "transaction-id is null")
	default:
		return nil, malformed(nil, "transaction-id is neither a string nor a number")
	}
}
