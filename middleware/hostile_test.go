package middleware_test

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/middleware"
	"github.com/pingpong/pingpong/poison"
)

// The harness carries at most 64 bytes of a request (MaxOriginalBytes) and its source key is
// "k1" (2 bytes).

func TestPoisonRecordCarriesTheRequestWithinItsBudget(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	body := `{"transaction-id": "b", "payload": {"message": "x"}}` // 52 bytes: with the key, 54
	in := request(body)
	// A header counts as encoded: a varint length before its key and before its value.
	in.Metadata.Set("a", "1")                          // 4 bytes: fits (58)
	in.Metadata.Set("c", "1")                          // 4 bytes: fits (62)
	in.Metadata.Set("bb", "12345")                     // 9 bytes: does not fit any more (71)
	in.Metadata.Set("huge", strings.Repeat("h", 1000)) // 1007 bytes: does not fit
	if _, err := hs.chain(in); err != nil {
		t.Fatal(err)
	}
	rec := hs.pub.on("t.failed")[0]
	if rec.Metadata.Get(poison.HeaderOriginal) != body || rec.Metadata.Get(poison.HeaderOriginalKey) != "k1" {
		t.Error("the value and the key come first")
	}
	if rec.Metadata.Get("a") != "1" || rec.Metadata.Get("c") != "1" {
		t.Error("the small headers are carried, the smallest first")
	}
	for _, k := range []string{"huge", "bb"} {
		if _, ok := rec.Metadata[k]; ok {
			t.Errorf("header %s carried beyond the budget", k)
		}
	}
	if _, ok := rec.Metadata[poison.HeaderOriginalOmitted]; ok {
		t.Error("the value was carried: no pingpong_original_omitted (the operator tools replay the record)")
	}
}

func TestPoisonRecordOmitsAHugeValueAndKeepsTheRest(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	in := request(`{"transaction-id": "v", "payload": {"message": "` + strings.Repeat("x", 100) + `"}}`)
	in.Metadata.Set(poison.HeaderReplayCount, "3")
	in.Metadata.Set(poison.HeaderReplayedFrom, "t.failed:0:9")
	in.Metadata.Set("small", "s")
	if _, err := hs.chain(in); err != nil {
		t.Fatal(err)
	}
	rec := hs.pub.on("t.failed")[0]
	if _, ok := rec.Metadata[poison.HeaderOriginal]; ok {
		t.Error("a value above the budget is not carried")
	}
	if rec.Metadata.Get(poison.HeaderOriginalKey) != "k1" || rec.Metadata.Get("small") != "s" {
		t.Error("what fits after the value is still carried")
	}
	if rec.Metadata.Get(poison.HeaderReplayCount) != "3" || rec.Metadata.Get(poison.HeaderReplayedFrom) != "t.failed:0:9" {
		t.Error("the replay headers are always carried: they bound replays")
	}
	if got := rec.Metadata.Get(poison.HeaderOriginalOmitted); !strings.Contains(got, "its value (151 bytes)") {
		t.Errorf("%s %q", poison.HeaderOriginalOmitted, got)
	}
}

func TestForgedServiceHeadersAreNeverCarried(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	in := request(`{"transaction-id": "f", "payload": {"message": "pang"}}`)
	for _, k := range []string{poison.HeaderOriginalOmitted, poison.HeaderSourceTimestamp, poison.HeaderOriginalKey} {
		in.Metadata.Set(k, "forged")
	}
	if _, err := hs.chain(in); err != nil {
		t.Fatal(err)
	}
	rec := hs.pub.on("t.failed")[0]
	if rec.Metadata.Get(poison.HeaderOriginalOmitted) != "" {
		t.Error("a forged pingpong_original_omitted survived")
	}
	if rec.Metadata.Get(poison.HeaderOriginalKey) != "k1" || rec.Metadata.Get(poison.HeaderSourceTimestamp) == "forged" {
		t.Error("the service's headers describe the request, not the request's claims")
	}
}

func TestOverlongCorrelationIDIsReplaced(t *testing.T) {
	hs := newHarness(t, pingpong, logrus.InfoLevel)
	long := strings.Repeat("c", middleware.MaxCorrelationIDBytes+1)
	in := request(`{"transaction-id": "c", "payload": {"message": "ping"}}`)
	in.Metadata.Set(wmmiddleware.CorrelationIDMetadataKey, long)
	if _, err := hs.chain(in); err != nil {
		t.Fatal(err)
	}
	got := hs.pub.on("t.succeeded")[0].Metadata.Get(wmmiddleware.CorrelationIDMetadataKey)
	if got == "" || got == long {
		t.Errorf("the answer's correlation id %.40q: want a new one", got)
	}
	if strings.Contains(hs.logs.String(), long) {
		t.Error("the overlong correlation id reached the logs")
	}

	fits := strings.Repeat("d", middleware.MaxCorrelationIDBytes)
	in = request(`{"transaction-id": "d", "payload": {"message": "ping"}}`)
	in.Metadata.Set(wmmiddleware.CorrelationIDMetadataKey, fits)
	if _, err := hs.chain(in); err != nil {
		t.Fatal(err)
	}
	if got := hs.pub.on("t.succeeded")[1].Metadata.Get(wmmiddleware.CorrelationIDMetadataKey); got != fits {
		t.Error("a correlation id within the bound is kept")
	}
}

// A request of 200,000 tiny headers: their encoded size, not len(key)+len(value), is held to the
// budget, so the poison record stays within what the producer sends (it was 1,002,547 bytes for
// a 524,288-byte budget).
func TestPoisonRecordBoundsTheEncodedSizeOfManyTinyHeaders(t *testing.T) {
	const budget = 512 << 10
	pub := newPublisher()
	pq := middleware.PoisonQueue{Publisher: pub, Topic: "t.failed", MaxOriginalBytes: budget}
	in := request(`{"transaction-id": "h", "payload": {"message": "pang"}}`)
	for i := 0; i < 200000; i++ {
		in.Metadata.Set(strconv.Itoa(i), "")
	}
	if _, err := pq.Middleware(pingpong)(in); err != nil {
		t.Fatal(err)
	}
	rec := pub.on("t.failed")[0]
	encoded, carried := 0, 0
	for k, v := range rec.Metadata { // as Kafka encodes a header: varint, key, varint, value
		encoded += len(binary.AppendVarint(nil, int64(len(k)))) + len(k) + len(binary.AppendVarint(nil, int64(len(v)))) + len(v)
		if _, err := strconv.Atoi(k); err == nil {
			carried++
		}
	}
	if encoded > budget+2048 {
		t.Errorf("the poison record's headers encode to %d bytes, above the %d-byte budget plus the service's headers", encoded, budget)
	}
	if carried == 0 || carried == 200000 {
		t.Errorf("%d of the 200,000 headers carried; want those that fit", carried)
	}
}
