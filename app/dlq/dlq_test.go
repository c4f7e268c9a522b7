package dlq_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/dlq"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// t0 is when the first crafted poison record was written.
var t0 = time.Date(2026, 5, 1, 14, 0, 0, 0, time.UTC)

// crafted are poison records as the service writes them (docs/poison-queue.md), with fixed
// timestamps, and the odd ones an operator meets: a record from before the headers existed, an
// omitted request, bytes that are not UTF-8, control characters where a terminal would obey them.
var crafted = []struct {
	partition int32
	at        time.Duration
	key       string
	value     string
	headers   [][2]string
}{
	{0, 0, "order-7", `{"transaction-id": "order-7", "payload": {"message": "Error the message doesn't contain 'ping'"}}`, [][2]string{
		{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, // the request's own
		{poison.HeaderCorrelationID, "corr-7"},
		{"_watermill_message_uuid", "6f24ebaa-90fb-48a7-9c8c-b6513e0147ec"},
		{poison.HeaderReason, `the message is not "ping"`},
		{poison.HeaderReasonCode, "not_ping"},
		{poison.HeaderTopic, "dev.pingpong.requested"},
		{poison.HeaderHandler, "pingpong"},
		{poison.HeaderSubscriber, "kafka.Subscriber"},
		{poison.HeaderPartition, "3"},
		{poison.HeaderOffset, "1834"},
		{poison.HeaderSourceTimestamp, "2026-05-01T13:59:59.9Z"},
		{poison.HeaderAttempts, "1"},
		{poison.HeaderFailedAt, "2026-05-01T14:00:00Z"},
		{poison.HeaderOriginal, `{"transaction-id": "order-7", "payload": {"message": "pong"}}`},
		{poison.HeaderOriginalKey, "order-7"},
		{"transaction_id", "order-7"},
	}},
	// From before the poison headers: only the answer.
	{0, 10 * time.Minute, "", `{"message": "Error in the format of the Kafka event"}`, nil},
	{0, 70 * time.Minute, "", `{"message": "Error in the format of the Kafka event"}`, [][2]string{
		{poison.HeaderReason, "the request is not valid UTF-8"},
		{poison.HeaderReasonCode, "malformed"},
		{poison.HeaderTopic, "dev.pingpong.requested"},
		{poison.HeaderPartition, "0"},
		{poison.HeaderOffset, "12"},
		{poison.HeaderAttempts, "1"},
		{poison.HeaderOriginal, "\xff\xfe\x00\x1b[2Jbinary"},
	}},
	{1, 5 * time.Minute, "order-8", `{"transaction-id": "order-8", "payload": {"message": "Error processing the event: publishing the answer"}}`, [][2]string{
		{poison.HeaderReason, "publishing the answer to dev.pingpong.succeeded: kafka: the broker is not available (after 6 attempts)"},
		{poison.HeaderReasonCode, "retries_exhausted"},
		{poison.HeaderTopic, "dev.pingpong.requested"},
		{poison.HeaderPartition, "1"},
		{poison.HeaderOffset, "77"},
		{poison.HeaderAttempts, "6"},
		{poison.HeaderOriginal, `{"transaction-id": "order-8", "payload": {"message": "ping"}}`},
		{poison.HeaderOriginalKey, "order-8"},
		{poison.HeaderReplayCount, "2"},
		{poison.HeaderReplayedFrom, "dev.pingpong.failed:1:0"},
		{"transaction_id", "order-8"},
	}},
	{1, 65 * time.Minute, "", `{"message": "Error in the format of the Kafka event"}`, [][2]string{
		{poison.HeaderReason, "the request is 700000 bytes, above the maximum of 524288"},
		{poison.HeaderReasonCode, "malformed"},
		{poison.HeaderTopic, "dev.pingpong.requested"},
		{poison.HeaderPartition, "2"},
		{poison.HeaderOffset, "9"},
		{poison.HeaderAttempts, "1"},
		{poison.HeaderOriginalOmitted, "the request is 700000 bytes, above the 524288 that a poison record carries"},
	}},
	{1, 130 * time.Minute, "evil\x1b]0;pwned\x07\nid", `{"transaction-id": "evil", "payload": {"message": "Error the message doesn't contain 'ping'"}}`, [][2]string{
		{poison.HeaderReason, `the message is not "ping"`},
		{poison.HeaderReasonCode, "not_ping"},
		{poison.HeaderTopic, "dev.pingpong.requested"},
		{poison.HeaderPartition, "0"},
		{poison.HeaderOffset, "13"},
		{poison.HeaderAttempts, "1"},
		{poison.HeaderOriginal, "{\"transaction-id\": \"evil\\u001b]0;pwned\\u0007\\nid\", \"payload\": {\"message\": \"\u202egnip\"}}"},
		{"transaction_id", "evil\x1b]0;pwned\x07\nid"},
	}},
}

type fixture struct {
	kafka   config.Kafka
	brokers []string
	client  *kgo.Client
}

// newFixture starts a broker with the service's topics over two partitions, the crafted records
// on .failed.
func newFixture(t *testing.T) fixture {
	t.Helper()
	cluster := servicetest.Cluster(t, 2)
	f := fixture{
		kafka:   config.Kafka{Brokers: strings.Join(cluster.ListenAddrs(), ","), TopicPrefix: servicetest.Prefix, Timeout: 5 * time.Second},
		brokers: cluster.ListenAddrs(),
	}
	f.client = servicetest.Client(t, f.brokers)
	for _, c := range crafted {
		r := &kgo.Record{Topic: servicetest.Topics.Failed, Partition: c.partition, Timestamp: t0.Add(c.at), Value: []byte(c.value)}
		if c.key != "" {
			r.Key = []byte(c.key)
		}
		for _, h := range c.headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
		}
		f.produce(t, r)
	}
	return f
}

// produce writes records one at a time, each in a batch of its own, so the broker's time index
// sees each timestamp.
func (f fixture) produce(t *testing.T, records ...*kgo.Record) {
	t.Helper()
	for _, r := range records {
		if err := f.client.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func (f fixture) open(t *testing.T) *dlq.Queue {
	t.Helper()
	q, err := dlq.Open(context.Background(), f.kafka)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

func selectAll(t *testing.T, q *dlq.Queue, sel dlq.Selection) []dlq.Record {
	t.Helper()
	var got []dlq.Record
	if err := q.Select(context.Background(), sel, func(r dlq.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func positions(recs []dlq.Record) []string {
	var ps []string
	for _, r := range recs {
		ps = append(ps, r.Position())
	}
	return ps
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestListTable(t *testing.T) {
	q := newFixture(t).open(t)
	var out bytes.Buffer
	if err := dlq.ListTable.Header(&out); err != nil {
		t.Fatal(err)
	}
	for _, r := range selectAll(t, q, dlq.Selection{}) {
		if err := dlq.ListTable.Row(&out, dlq.ListRow(r)...); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "list.golden", out.Bytes())
	if bytes.ContainsAny(out.Bytes(), "\x1b\x07\u202e") {
		t.Errorf("the table holds raw control characters:\n%q", out.String())
	}
}

func TestJSONDecodesEveryHeader(t *testing.T) {
	q := newFixture(t).open(t)
	recs := selectAll(t, q, dlq.Selection{})
	if len(recs) != len(crafted) {
		t.Fatalf("read %d records, want %d", len(recs), len(crafted))
	}
	byPosition := map[string]dlq.JSONRecord{}
	for _, r := range recs {
		var line bytes.Buffer
		if err := dlq.WriteJSONLine(&line, r); err != nil {
			t.Fatal(err)
		}
		if strings.Count(line.String(), "\n") != 1 {
			t.Errorf("%s: not one line: %q", r.Position(), line.String())
		}
		var j dlq.JSONRecord
		if err := json.Unmarshal(line.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		byPosition[r.Position()] = j
	}

	notPing := byPosition["0:0"]
	if notPing.ReasonCode != "not_ping" || notPing.TransactionID != "order-7" || notPing.Attempts != 1 ||
		*notPing.SourcePartition != 3 || *notPing.SourceOffset != 1834 || notPing.SourceTimestamp != "2026-05-01T13:59:59.9Z" ||
		notPing.OriginalEncoding != "utf-8" || *notPing.Original != crafted[0].headers[13][1] || *notPing.OriginalKey != "order-7" ||
		notPing.CorrelationID != "corr-7" || notPing.Timestamp != "2026-05-01T14:00:00Z" || notPing.Legacy {
		t.Errorf("0:0 decoded as %+v", notPing)
	}
	if len(notPing.Headers) != len(crafted[0].headers) || notPing.Headers["traceparent"] == "" {
		t.Errorf("0:0 headers %v", notPing.Headers)
	}

	if legacy := byPosition["0:1"]; !legacy.Legacy || legacy.Original != nil || legacy.ReasonCode != "" {
		t.Errorf("0:1 (no headers) decoded as %+v", legacy)
	}

	binary := byPosition["0:2"]
	if binary.OriginalEncoding != "base64" {
		t.Fatalf("0:2 original_encoding %q, want base64", binary.OriginalEncoding)
	}
	if b, err := base64.StdEncoding.DecodeString(*binary.Original); err != nil || string(b) != crafted[2].headers[6][1] {
		t.Errorf("0:2 original %q decodes to %q, %v", *binary.Original, b, err)
	}
	if !slices.Contains(binary.Base64Headers, poison.HeaderOriginal) {
		t.Errorf("0:2 base64_headers %v", binary.Base64Headers)
	}

	if replayed := byPosition["1:0"]; replayed.ReplayCount != 2 || replayed.ReplayedFrom != "dev.pingpong.failed:1:0" || replayed.Attempts != 6 {
		t.Errorf("1:0 decoded as %+v", replayed)
	}
	if omitted := byPosition["1:1"]; omitted.Original != nil || !strings.Contains(omitted.OriginalOmitted, "700000 bytes") || omitted.Legacy {
		t.Errorf("1:1 decoded as %+v", omitted)
	}
}

func TestSelectByTimeOffsetReasonAndTransaction(t *testing.T) {
	q := newFixture(t).open(t)
	for _, tc := range []struct {
		name string
		sel  dlq.Selection
		want []string
	}{
		{"everything, a partition after the other", dlq.Selection{}, []string{"0:0", "0:1", "0:2", "1:0", "1:1", "1:2"}},
		{"since and until", dlq.Selection{Range: dlq.Range{Since: t0.Add(6 * time.Minute), Until: t0.Add(66 * time.Minute)}}, []string{"0:1", "1:1"}},
		{"since only", dlq.Selection{Range: dlq.Range{Since: t0.Add(65 * time.Minute)}}, []string{"0:2", "1:1", "1:2"}},
		{"until only", dlq.Selection{Range: dlq.Range{Until: t0.Add(5 * time.Minute)}}, []string{"0:0"}},
		{"after the newest", dlq.Selection{Range: dlq.Range{Since: t0.Add(24 * time.Hour)}}, nil},
		{"one partition from an offset", dlq.Selection{Range: dlq.Range{Offsets: map[int32]int64{1: 1}}}, []string{"1:1", "1:2"}},
		{"an offset past the end", dlq.Selection{Range: dlq.Range{Offsets: map[int32]int64{0: 99}}}, nil},
		{"a reason code", dlq.Selection{Filter: dlq.Filter{ReasonCodes: []string{"not_ping"}}}, []string{"0:0", "1:2"}},
		{"two reason codes", dlq.Selection{Filter: dlq.Filter{ReasonCodes: []string{"malformed", "retries_exhausted"}}}, []string{"0:2", "1:0", "1:1"}},
		{"no reason code", dlq.Selection{Filter: dlq.Filter{ReasonCodes: []string{dlq.NoReasonCode}}}, []string{"0:1"}},
		{"reason text, any case", dlq.Selection{Filter: dlq.Filter{ReasonContains: "BROKER is not"}}, []string{"1:0"}},
		{"transaction id", dlq.Selection{Filter: dlq.Filter{TransactionID: "order-7"}}, []string{"0:0"}},
		{"limit", dlq.Selection{Limit: 2}, []string{"0:0", "0:1"}},
		{"filter and limit", dlq.Selection{Filter: dlq.Filter{ReasonCodes: []string{"malformed"}}, Limit: 1}, []string{"0:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := positions(selectAll(t, q, tc.sel)); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	err := q.Select(context.Background(), dlq.Selection{Range: dlq.Range{Offsets: map[int32]int64{5: 0}}}, func(dlq.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "has no partition 5 (it has partitions 0 to 1)") {
		t.Errorf("a partition that does not exist: %v", err)
	}
}

func TestStats(t *testing.T) {
	q := newFixture(t).open(t)
	stats := dlq.NewStats()
	for _, r := range selectAll(t, q, dlq.Selection{}) {
		stats.Add(r)
	}
	var out bytes.Buffer
	if err := stats.WriteText(&out, servicetest.Topics.Failed); err != nil {
		t.Fatal(err)
	}
	golden(t, "stats.golden", out.Bytes())

	j := stats.JSON(servicetest.Topics.Failed)
	want := dlq.JSONStats{
		Topic: servicetest.Topics.Failed, Records: 6,
		ByReason:        map[string]int{"malformed": 2, "not_ping": 2, "retries_exhausted": 1, "panic": 0, "undecodable_batch": 0, "none": 1},
		ByHour:          map[string]int{"2026-05-01T14:00Z": 3, "2026-05-01T15:00Z": 2, "2026-05-01T16:00Z": 1},
		Oldest:          &dlq.JSONPosition{Partition: 0, Offset: 0, Timestamp: "2026-05-01T14:00:00Z"},
		Newest:          &dlq.JSONPosition{Partition: 1, Offset: 2, Timestamp: "2026-05-01T16:10:00Z"},
		WithoutOriginal: 2, Legacy: 1, Omitted: 1, Replayed: 1,
	}
	gotJSON, _ := json.Marshal(j)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("stats\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestShow(t *testing.T) {
	q := newFixture(t).open(t)
	var out bytes.Buffer
	for _, p := range [][2]int64{{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}} {
		r, err := q.Get(context.Background(), int32(p[0]), p[1])
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("=== " + r.Position() + "\n")
		if err := dlq.WriteDetail(&out, r); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "show.golden", out.Bytes())
	if bytes.ContainsAny(out.Bytes(), "\x1b\x07\u202e") {
		t.Errorf("show printed raw control characters")
	}

	for _, tc := range []struct {
		partition int32
		offset    int64
		says      string
	}{
		{0, 3, "no record at 0:3: partition 0 of dev.pingpong.failed holds offsets 0 to 2"},
		{2, 0, "no record at 2:0: dev.pingpong.failed has no partition 2 (it has partitions 0 to 1)"},
	} {
		_, err := q.Get(context.Background(), tc.partition, tc.offset)
		if !errors.Is(err, dlq.ErrNoRecord) || err.Error() != tc.says {
			t.Errorf("Get(%d, %d): %v, want %q", tc.partition, tc.offset, err, tc.says)
		}
	}
}

func TestReplaySendsTheOriginalWithReplayHeaders(t *testing.T) {
	f := newFixture(t)
	q := f.open(t)
	plan, err := q.Plan(context.Background(), dlq.Selection{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	decisions := map[string]string{}
	for _, d := range plan {
		decisions[d.Record.Position()] = d.Skip
	}
	wantDecisions := map[string]string{
		"0:0": "",
		"0:1": dlq.SkipLegacy,
		"0:2": "",
		"1:0": "replayed 2 times already (--max-replays 2)",
		"1:1": dlq.SkipOmitted,
		"1:2": "",
	}
	if !maps.Equal(decisions, wantDecisions) {
		t.Fatalf("decisions %v, want %v", decisions, wantDecisions)
	}

	var sent []dlq.Sent
	replayed, failed, err := q.Send(context.Background(), plan, 0, func(s dlq.Sent) { sent = append(sent, s) })
	if err != nil || replayed != 3 || failed != 0 || len(sent) != 3 {
		t.Fatalf("replayed %d, failed %d, %v", replayed, failed, err)
	}

	requests := readAll(t, f, servicetest.Topics.Requested, 3)
	byFrom := map[string]*kgo.Record{}
	for _, r := range requests {
		byFrom[header(r, poison.HeaderReplayedFrom)] = r
	}
	first := byFrom["dev.pingpong.failed:0:0"]
	if first == nil {
		t.Fatalf("no replay of 0:0 among %d requests", len(requests))
	}
	if string(first.Key) != "order-7" || string(first.Value) != crafted[0].headers[13][1] {
		t.Errorf("replay of 0:0: key %q value %q", first.Key, first.Value)
	}
	var names []string
	for _, h := range first.Headers {
		names = append(names, h.Key+"="+string(h.Value))
	}
	wantHeaders := []string{
		"traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"correlation_id=corr-7",
		"pingpong_replayed_from=dev.pingpong.failed:0:0",
		"pingpong_replay_count=1",
	}
	if !slices.Equal(names, wantHeaders) {
		t.Errorf("replay of 0:0 has headers\n%v\nwant (the request's own and the replay's, none of the service's)\n%v", names, wantHeaders)
	}
	binary := byFrom["dev.pingpong.failed:0:2"]
	if binary == nil || binary.Key != nil || string(binary.Value) != crafted[2].headers[6][1] {
		t.Errorf("replay of 0:2 (no key, binary): %+v", binary)
	}
	if evil := byFrom["dev.pingpong.failed:1:2"]; evil == nil || header(evil, poison.HeaderReplayCount) != "1" {
		t.Errorf("replay of 1:2: %+v", evil)
	}
}

func TestReplayRateBoundsTheSending(t *testing.T) {
	f := newFixture(t)
	q := f.open(t)
	plan, err := q.Plan(context.Background(), dlq.Selection{Filter: dlq.Filter{ReasonCodes: []string{"not_ping", "malformed"}}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if n := dlq.ToReplay(plan); n != 3 {
		t.Fatalf("%d to replay, want 3", n)
	}
	// 3 requests at 10 a second: the third goes 200ms after the first.
	start := time.Now()
	if _, _, err := q.Send(context.Background(), plan, 10, func(dlq.Sent) {}); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond {
		t.Errorf("3 requests at --rate 10 took %v, want at least 200ms", elapsed)
	}
}

func TestFollowSeesNewRecordsUntilCancelled(t *testing.T) {
	f := newFixture(t)
	q := f.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan dlq.Record, 10)
	done := make(chan error, 1)
	go func() {
		done <- q.Read(ctx, dlq.Range{Follow: true}, func(r dlq.Record) error { seen <- r; return nil })
	}()
	for range crafted {
		<-seen
	}
	f.produce(t, &kgo.Record{Topic: servicetest.Topics.Failed, Partition: 1, Value: []byte("new"),
		Headers: []kgo.RecordHeader{{Key: poison.HeaderReasonCode, Value: []byte("panic")}}})
	select {
	case r := <-seen:
		if r.Position() != "1:3" || r.ReasonCode != "panic" {
			t.Errorf("followed %s %q", r.Position(), r.ReasonCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new record did not arrive")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Read after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after cancel")
	}
}

// TestOpenFailsWithinTheTimeout: a listener that never answers is given up on after KAFKA_TIMEOUT.
func TestOpenFailsWithinTheTimeout(t *testing.T) {
	k := config.Kafka{Brokers: silentListener(t), TopicPrefix: servicetest.Prefix, Timeout: 500 * time.Millisecond}
	_, err := dlq.Open(context.Background(), k)
	want := "cannot reach Kafka at " + k.Brokers + " within 500ms (KAFKA_TIMEOUT): "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Open: %v, want %q...", err, want)
	}
}

// TestOpenFailsAtOnceWhenRefused: a closed port is the service's "no broker listens", without
// waiting for KAFKA_TIMEOUT (an hour here: the test would time out first).
func TestOpenFailsAtOnceWhenRefused(t *testing.T) {
	k := config.Kafka{Brokers: closedPort(t), TopicPrefix: servicetest.Prefix, Timeout: time.Hour}
	_, err := dlq.Open(context.Background(), k)
	want := "no broker listens at KAFKA_BROKERS=" + k.Brokers + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Open: %v, want %q...", err, want)
	}
}

func TestOpenNamesAMissingTopic(t *testing.T) {
	f := newFixture(t)
	k := f.kafka
	k.TopicPrefix = "other"
	_, err := dlq.Open(context.Background(), k)
	if err == nil || !strings.Contains(err.Error(), "the topic other.failed does not exist: is TOPIC_PREFIX right?") {
		t.Errorf("Open: %v", err)
	}
}

func readAll(t *testing.T, f fixture, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := servicetest.Client(t, f.brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != n {
		t.Fatalf("read %d records from %s, want %d", len(got), topic, n)
	}
	return got
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// closedPort is a loopback address where nothing listens.
// silentListener accepts connections and never answers, like a firewall that drops packets.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
