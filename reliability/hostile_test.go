package reliability_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/middleware"
	"github.com/pingpong/pingpong/poison"
)

// hostile is a record another team (or an attacker) could write to the input topic, and the
// answer the service must give it.
type hostile struct {
	name    string
	key     []byte
	value   []byte // nil is a tombstone
	headers []kgo.RecordHeader
	// code is the poison record's reason code, or "" for a pong.
	code poison.ReasonCode
	// reason is a part of reason_poisoned.
	reason string
	// check looks at the answer further; it returns what is wrong, or "".
	check func(a servicetest.Answer) string
}

const kib = 1024

func pingWithID(id string) []byte {
	return []byte(`{"transaction-id": ` + id + `, "payload": {"message": "ping"}}`)
}

// padded is a request of exactly size bytes: message is its payload.message.
func padded(id, message string, size int) []byte {
	base := `{"transaction-id": "` + id + `", "payload": {"message": "` + message + `", "pad": ""}}`
	return []byte(strings.Replace(base, `"pad": ""`, `"pad": "`+strings.Repeat("x", size-len(base))+`"`, 1))
}

func header(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// hasNo is a check that the answer does not carry the header k (with value v, when v is given).
func hasNo(k string, v ...string) func(servicetest.Answer) string {
	return func(a servicetest.Answer) string {
		got, ok := a.Headers[k]
		if ok && (len(v) == 0 || got == v[0]) {
			return fmt.Sprintf("carries the request's header %s (%d bytes)", k, len(got))
		}
		return ""
	}
}

func hostileRecords() []hostile {
	deep := `{"transaction-id": "deep", "payload": {"message": "ping", "x": ` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}}`
	forged := []kgo.RecordHeader{
		header(poison.HeaderReason, "forged"), header(poison.HeaderReasonCode, "pong"),
		header(poison.HeaderAttempts, "999"), header(poison.HeaderOffset, "-1"),
		header(poison.HeaderPartition, "77"), header(poison.HeaderTopic, "elsewhere"),
		header(poison.HeaderOriginal, "forged original"), header(poison.HeaderOriginalOmitted, "forged"),
		header(poison.HeaderFailedAt, "1970-01-01T00:00:00Z"), header(handlers.TransactionIDMetadataKey, "forged-id"),
	}
	notForged := func(a servicetest.Answer) string {
		for _, h := range forged {
			if a.Headers[h.Key] == string(h.Value) {
				return fmt.Sprintf("trusted the request's %s header", h.Key)
			}
		}
		return ""
	}
	return []hostile{
		{name: "above MAX_REQUEST_BYTES (600 KiB)", value: padded("big", "ping", 600*kib), code: poison.ReasonMalformed, reason: "above the maximum of 524288",
			check: func(a servicetest.Answer) string {
				if _, ok := a.Headers[poison.HeaderOriginal]; ok || a.Headers[poison.HeaderOriginalOmitted] == "" {
					return "the poison record carries the oversized request instead of saying it was omitted"
				}
				return ""
			}},
		{name: "deep nesting (100,000 levels)", value: []byte(deep), code: poison.ReasonMalformed, reason: "exceeded max depth"},
		{name: "invalid UTF-8", value: []byte("{\"transaction-id\": \"\xc3\x28\", \"payload\": {\"message\": \"ping\"}}"), code: poison.ReasonMalformed, reason: "not valid UTF-8"},
		{name: "binary garbage", value: []byte{0, 1, 2, 0xff, 0xfe, '{', 0}, code: poison.ReasonMalformed, reason: "UTF-8"},
		{name: "null id", value: pingWithID("null"), code: poison.ReasonMalformed, reason: "transaction-id is null"},
		{name: "id of the wrong type", value: pingWithID(`{"id": 1}`), code: poison.ReasonMalformed, reason: "neither a string nor a number"},
		{name: "message of the wrong type", value: []byte(`{"transaction-id": "wt", "payload": {"message": 1}}`), code: poison.ReasonMalformed, reason: "not a string"},
		{name: "payload null", value: []byte(`{"transaction-id": "pn", "payload": null}`), code: poison.ReasonMalformed, reason: "payload is not a JSON object"},
		{name: "number as id", value: pingWithID("-12.5e3"), check: keyIs("-12.5e3")},
		{name: "huge numeric id (400 KiB of digits)", value: pingWithID("1" + strings.Repeat("0", 400*kib)), code: poison.ReasonMalformed, reason: "above the original's maximum of 4300"},
		{name: "huge string id (400 KiB)", value: pingWithID(`"` + strings.Repeat("i", 400*kib) + `"`), code: poison.ReasonMalformed, reason: "transaction-id is"},
		{name: "not ping with a huge id (400 KiB)", value: []byte(`{"transaction-id": "` + strings.Repeat("n", 400*kib) + `", "payload": {"message": "pang"}}`), code: poison.ReasonMalformed, reason: "transaction-id is"},
		{name: "empty value", value: []byte{}, code: poison.ReasonMalformed, reason: "empty"},
		{name: "tombstone (null value)", value: nil, key: []byte("tomb"), code: poison.ReasonMalformed, reason: "empty"},
		{name: "binary header names and values", value: pingWithID(`"bin-h"`), headers: []kgo.RecordHeader{{Key: "\x00\xff", Value: []byte{0xff, 0, 0xfe}}, {Key: "", Value: nil}}, check: keyIs("bin-h")},
		{name: "huge header on a ping (700 KiB)", value: pingWithID(`"huge-h"`), headers: []kgo.RecordHeader{header("x-huge", strings.Repeat("h", 700*kib))},
			check: both(keyIs("huge-h"), hasNo("x-huge"))},
		{name: "huge header on a rejection (600 KiB) with a 380 KiB request", value: padded("huge-hr", "pang", 380*kib), headers: []kgo.RecordHeader{header("x-huge", strings.Repeat("h", 600*kib))},
			code: poison.ReasonNotPing, reason: "not \"ping\""},
		{name: "huge correlation id on a ping (900 KiB)", value: pingWithID(`"huge-c"`), headers: []kgo.RecordHeader{header(poison.HeaderCorrelationID, strings.Repeat("c", 900*kib))},
			check: both(keyIs("huge-c"), shortCorrelationID)},
		{name: "forged poison headers on a rejection", value: []byte(`{"transaction-id": "forged", "payload": {"message": "pang"}}`), headers: forged,
			code: poison.ReasonNotPing, reason: "not \"ping\"", check: notForged},
		{name: "forged poison headers on a ping", value: pingWithID(`"forged-p"`), headers: forged, check: both(keyIs("forged-p"), notForged)},
		{name: "compressible 4 MiB value", value: padded("c4v", "ping", 4<<20), code: poison.ReasonMalformed, reason: "above the maximum of 524288",
			check: both(hasNo(poison.HeaderOriginal), omitted("not carried: its value (4194304 bytes)"))},
		{name: "compressible 4 MiB header on a rejection", value: []byte(`{"transaction-id": "c4h", "payload": {"message": "pang"}}`),
			headers: []kgo.RecordHeader{header("x-huge", strings.Repeat("h", 4<<20)), header("x-small", "kept")}, code: poison.ReasonNotPing, reason: "not \"ping\"",
			check: both(hasNo("x-huge"), hasNo(poison.HeaderOriginalOmitted), func(a servicetest.Answer) string {
				if a.Headers["x-small"] != "kept" {
					return "the small header was not carried along"
				}
				return ""
			})},
		{name: "compressible 4 MiB key on a rejection", key: bytes.Repeat([]byte("k"), 4<<20), value: []byte(`{"transaction-id": "c4k", "payload": {"message": "pang"}}`),
			code: poison.ReasonNotPing, reason: "not \"ping\"", check: both(hasNo(poison.HeaderOriginalKey), hasNo(poison.HeaderOriginalOmitted))},
		{name: "compressible 4 MiB correlation id on a ping", value: pingWithID(`"c4c"`), headers: []kgo.RecordHeader{header(poison.HeaderCorrelationID, strings.Repeat("c", 4<<20))},
			check: both(keyIs("c4c"), shortCorrelationID)},
		{name: "empty key", key: []byte{}, value: pingWithID(`"k0"`), check: keyIs("k0")},
		{name: "huge key on a ping (900 KiB)", key: bytes.Repeat([]byte("k"), 900*kib), value: pingWithID(`"k900"`), check: keyIs("k900")},
		{name: "huge key on a rejection (600 KiB) with a 380 KiB request", key: bytes.Repeat([]byte("k"), 600*kib), value: padded("khr", "pang", 380*kib),
			code: poison.ReasonNotPing, reason: "not \"ping\""},
	}
}

func shortCorrelationID(a servicetest.Answer) string {
	if n := len(a.Headers[poison.HeaderCorrelationID]); n == 0 || n > middleware.MaxCorrelationIDBytes {
		return fmt.Sprintf("the answer's correlation id is %d bytes", n)
	}
	return ""
}

func omitted(part string) func(servicetest.Answer) string {
	return func(a servicetest.Answer) string {
		if got := a.Headers[poison.HeaderOriginalOmitted]; !strings.Contains(got, part) {
			return fmt.Sprintf("%s %q does not say %q", poison.HeaderOriginalOmitted, got, part)
		}
		return ""
	}
}

func keyIs(want string) func(servicetest.Answer) string {
	return func(a servicetest.Answer) string {
		if a.Key != want {
			return fmt.Sprintf("key %.40q, want %q", a.Key, want)
		}
		return ""
	}
}

func both(checks ...func(servicetest.Answer) string) func(servicetest.Answer) string {
	return func(a servicetest.Answer) string {
		for _, c := range checks {
			if problem := c(a); problem != "" {
				return problem
			}
		}
		return ""
	}
}

// TestHostileRecords sends the table of hostile records to one partition, then a normal ping
// behind them: each is answered as documented, the service does not crash, and the ping is
// answered too, so no record blocked its partition.
func TestHostileRecords(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	svc := servicetest.Start(t, serviceConfig(t, brokers))
	// The producer sends records of any size the broker takes: it checks a batch's compressed
	// size, so a compressible record can be many times its message.max.bytes.
	producer := servicetest.Client(t, brokers, kgo.ProducerBatchMaxBytes(64<<20), kgo.MaxBufferedBytes(256<<20))
	reader := servicetest.NewReader(t, brokers, kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(64<<20))

	table := hostileRecords()
	records := make([]*kgo.Record, 0, len(table)+1)
	for _, h := range table {
		records = append(records, &kgo.Record{Topic: servicetest.Topics.Requested, Key: h.key, Value: h.value, Headers: h.headers})
	}
	behind := pingWithID(`"behind-the-hostile-ones"`)
	records = append(records, &kgo.Record{Topic: servicetest.Topics.Requested, Value: behind})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, r := range records { // one batch each, in order
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("producing %.60q: %v", r.Value, err)
		}
	}

	// The ping behind the table is answered: nothing blocked the partition. The partition's
	// messages are answered concurrently (its window), so the ping's answer may come before
	// some of the table's: wait for one answer a record.
	waitFor(t, time.Minute, "the ping behind the hostile records, and every one of them, to be answered", func() bool {
		reader.Await(t, nil, 100*time.Millisecond)
		answers := reader.Answers()
		for _, a := range answers {
			if a.Key == "behind-the-hostile-ones" {
				return len(answers) >= len(records)
			}
		}
		return false
	})
	t.Logf("%d hostile records and the ping behind them answered in %v", len(table), time.Since(start).Round(time.Millisecond))

	byOffset := map[string][]servicetest.Answer{}
	byKey := map[string][]servicetest.Answer{}
	for _, a := range reader.Answers() {
		if a.Topic == servicetest.Topics.Failed {
			byOffset[a.Headers[poison.HeaderOffset]] = append(byOffset[a.Headers[poison.HeaderOffset]], a)
		} else {
			byKey[a.Key] = append(byKey[a.Key], a)
		}
	}
	for i, h := range table {
		t.Run(h.name, func(t *testing.T) {
			offset := strconv.FormatInt(records[i].Offset, 10)
			failed := byOffset[offset]
			var answer servicetest.Answer
			if h.code == "" {
				id := idFromValue(h.value)
				pongs := byKey[handlers.TransactionIDKey(id)]
				if len(pongs) == 0 || len(failed) > 0 {
					t.Fatalf("want a pong, got %d pongs and %d poison records %v", len(pongs), len(failed), reasons(failed))
				}
				answer = pongs[0]
				if want := string(handlers.PongAnswer(id)); answer.Value != want {
					t.Errorf("pong %.80q, want %.80q", answer.Value, want)
				}
			} else {
				if len(failed) != 1 {
					t.Fatalf("want one poison record for offset %s, got %d", offset, len(failed))
				}
				answer = failed[0]
				if got := answer.Headers[poison.HeaderReasonCode]; got != string(h.code) {
					t.Errorf("reason code %q, want %q (reason %q)", got, h.code, answer.Headers[poison.HeaderReason])
				}
				if got := answer.Headers[poison.HeaderReason]; !strings.Contains(got, h.reason) {
					t.Errorf("reason %.200q does not say %q", got, h.reason)
				}
				if got := answer.Headers[poison.HeaderAttempts]; got != "1" {
					t.Errorf("attempts %q: a rejection is answered at once", got)
				}
			}
			if h.check != nil {
				if problem := h.check(answer); problem != "" {
					t.Error(problem)
				}
			}
		})
	}

	if n := metric(t, svc, "pingpong_panics_total"); n != 0 {
		t.Errorf("%v panics", n)
	}
	if code := httpStatus("http://" + svc.HTTPAddr() + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d after the hostile records", code)
	}
}

// TestRecordsAboveTheBrokersLimit: a record above the broker's message.max.bytes never reaches
// the service (the broker refuses it); where a topic allows larger records, the service answers
// one as malformed with a poison record that fits the default limit of .failed.
func TestRecordsAboveTheBrokersLimit(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	servicetest.Start(t, serviceConfig(t, brokers))
	producer := servicetest.Client(t, brokers, kgo.ProducerBatchMaxBytes(16<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	reader := servicetest.NewReader(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tooLarge := padded("2mib", "ping", 2<<20)
	err := producer.ProduceSync(ctx, &kgo.Record{Topic: servicetest.Topics.Requested, Value: tooLarge}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 2 MiB record on a topic with the default limit: want MESSAGE_TOO_LARGE from the broker, got %v", err)
	}

	adm := kadm.NewClient(servicetest.Client(t, brokers))
	limit := strconv.Itoa(8 << 20)
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, servicetest.Topics.Requested); err != nil {
		t.Fatal(err)
	}
	records := []*kgo.Record{
		{Topic: servicetest.Topics.Requested, Value: tooLarge},
		{Topic: servicetest.Topics.Requested, Value: pingWithID(`"after-2mib"`)},
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("with max.message.bytes=%s on the topic: %v", limit, err)
	}
	waitFor(t, time.Minute, "both records answered", func() bool {
		reader.Await(t, nil, 100*time.Millisecond)
		return len(reader.Answers()) >= 2
	})
	for _, a := range reader.Answers() {
		switch a.Topic {
		case servicetest.Topics.Failed:
			if a.Headers[poison.HeaderReasonCode] != string(poison.ReasonMalformed) || a.Headers[poison.HeaderOriginalOmitted] == "" {
				t.Errorf("the 2 MiB record: headers %v", trimmed(a.Headers))
			}
		case servicetest.Topics.Succeeded:
			if a.Key != "after-2mib" {
				t.Errorf("unexpected pong %q", a.Key)
			}
		}
	}
}

func idFromValue(v []byte) []byte {
	rest := strings.TrimPrefix(string(v), `{"transaction-id": `)
	id, _, _ := strings.Cut(rest, ", ")
	return []byte(id)
}

func reasons(as []servicetest.Answer) []string {
	var r []string
	for _, a := range as {
		r = append(r, a.Headers[poison.HeaderReasonCode]+": "+a.Headers[poison.HeaderReason])
	}
	return r
}

func trimmed(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		if len(v) > 100 {
			v = v[:100] + "…"
		}
		out[k] = v
	}
	return out
}
