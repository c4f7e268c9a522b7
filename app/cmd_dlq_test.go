package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/dlq"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/handlers"
	"github.com/pingpong/pingpong/poison"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// toolResult is how a run of the binary ended.
type toolResult struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// runTool runs the binary to the end, as an operator would, with stdin (nil: /dev/null).
func runTool(t *testing.T, env []string, stdin io.Reader, args ...string) toolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(servicetest.Environ(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := toolResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("pingpong %v: %v", args, err)
	}
	return r
}

func (r toolResult) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// mustRun runs the binary and fails the test unless it exits 0.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := runTool(t, env, nil, args...)
	if r.code != 0 {
		t.Fatalf("pingpong %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

func toolEnv(brokers []string) []string {
	return []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TIMEOUT=5s"}
}

// awaitRecords waits until the topics hold n records in all.
func awaitRecords(t *testing.T, adm *kadm.Client, n int64, topics ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), topics...)
		var total int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		}
		if total == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v hold %d records, want %d (%v)", topics, total, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func endOffset(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

// timestamps are the tools' times; the golden files hold this in their place.
var timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)

func normalize(s string) string { return timestamps.ReplaceAllString(s, "YYYY-MM-DDThh:mm:ss.mmmZ") }

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// anyTime is a time as the tools print it, to any precision: RFC 3339, or an hour of by_hour.
var anyTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?Z`)

// poisonMix are requests the service poisons, each with what an operator must see.
var poisonMix = []struct {
	key, value string
	headers    map[string]string
	code       string
}{
	{"golden-1", `{"transaction-id": "golden-1", "payload": {"message": "pang"}}`, nil, "not_ping"},
	{"", `not json at all`, nil, "malformed"},
	{"", `{"transaction-id": 42, "payload": {}}`, nil, "malformed"},
	{"", "\xff\xfe\x00\x1b[2J", nil, "malformed"},
	{"", "{\"transaction-id\": \"golden-5\", \"payload\": {\"message\": \"\x1b[31mping\"}}", nil, "malformed"},
	{"", `{"transaction-id": "golden-6", "payload": {"message": "` + strings.Repeat("ping ", 80) + `"}}`, nil, "malformed"},
	{"golden-7", "", nil, "malformed"},
	{"", `{"transaction-id": "golden-8", "payload": {"message": "pong"}}`,
		map[string]string{poison.HeaderReplayCount: "2", poison.HeaderReplayedFrom: "dev.pingpong.failed:0:0"}, "not_ping"},
	{"golden-9", `{"transaction-id": "golden-9", "payload": {"message": "ping"}}`, nil, ""}, // a pong: not in the poison queue
}

// TestDLQListShowStatsOnTheServicesRecords poisons a mix of requests with the real service, one
// at a time so that the poison queue's order is known, then reads them with the binary.
func TestDLQListShowStatsOnTheServicesRecords(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	// One at a time, so the poison records are in request order, as the golden table expects.
	cfg.Transport.PartitionWindow = 1
	cfg.MaxRequestBytes = 300 // golden-6 is larger: its poison record omits it
	servicetest.Start(t, cfg)
	client := servicetest.Client(t, brokers)
	adm := kadm.NewClient(client)

	var sourceOffsets []int64
	for i, m := range poisonMix {
		r := &kgo.Record{Topic: servicetest.Topics.Requested, Value: []byte(m.value)}
		if m.key != "" {
			r.Key = []byte(m.key)
		}
		for k, v := range m.headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if err := client.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if m.code != "" {
			sourceOffsets = append(sourceOffsets, r.Offset)
		}
		awaitRecords(t, adm, int64(i+1), servicetest.Topics.Succeeded, servicetest.Topics.Failed)
	}
	env := toolEnv(brokers)

	golden(t, "dlq_list.golden", normalize(mustRun(t, env, "dlq", "list")))

	// JSON: one object a line, every request as it was sent.
	var records []dlq.JSONRecord
	scanner := bufio.NewScanner(strings.NewReader(mustRun(t, env, "dlq", "list", "--output", "json")))
	for scanner.Scan() {
		var j dlq.JSONRecord
		if err := json.Unmarshal(scanner.Bytes(), &j); err != nil {
			t.Fatalf("not JSON: %s: %v", scanner.Text(), err)
		}
		records = append(records, j)
	}
	if len(records) != len(sourceOffsets) {
		t.Fatalf("%d records listed, want %d", len(records), len(sourceOffsets))
	}
	for i, j := range records {
		m := poisonMix[i]
		if j.ReasonCode != m.code || j.SourceOffset == nil || *j.SourceOffset != sourceOffsets[i] || j.SourceTopic != servicetest.Topics.Requested {
			t.Errorf("record %d: code %q source %s:%v, want %q at offset %d", i, j.ReasonCode, j.SourceTopic, j.SourceOffset, m.code, sourceOffsets[i])
		}
		if j.OriginalOmitted != "" {
			if j.Original != nil || i != 5 {
				t.Errorf("record %d: omitted %q, original %v", i, j.OriginalOmitted, j.Original)
			}
			continue
		}
		if j.Original == nil {
			t.Errorf("record %d has no original", i)
			continue
		}
		original := []byte(*j.Original)
		if j.OriginalEncoding == "base64" {
			var err error
			if original, err = base64.StdEncoding.DecodeString(*j.Original); err != nil {
				t.Fatal(err)
			}
		}
		if string(original) != m.value {
			t.Errorf("record %d: original %q (%s), want %q", i, original, j.OriginalEncoding, m.value)
		}
	}
	if records[3].OriginalEncoding != "base64" || records[0].OriginalEncoding != "utf-8" {
		t.Errorf("original_encoding: %q for bytes that are not UTF-8, %q for JSON", records[3].OriginalEncoding, records[0].OriginalEncoding)
	}
	if r := records[7]; r.ReplayCount != 2 || r.ReplayedFrom != "dev.pingpong.failed:0:0" {
		t.Errorf("the replay headers were not carried: %+v", r)
	}

	// Filters, as the binary takes them.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--reason", "not_ping"}, 2},
		{[]string{"--reason", "malformed", "--limit", "2"}, 2},
		{[]string{"--reason-contains", "NOT VALID UTF-8"}, 1},
		{[]string{"--transaction-id", "golden-1"}, 1},
		{[]string{"--offset", "0:6"}, 2},
		{[]string{"--since", "1h"}, 8},
		{[]string{"--until", "1h"}, 0},
	} {
		out := mustRun(t, env, append([]string{"dlq", "list", "-o", "json"}, tc.args...)...)
		if n := strings.Count(out, "\n"); n != tc.want {
			t.Errorf("dlq list %v: %d records, want %d", tc.args, n, tc.want)
		}
	}

	show := mustRun(t, env, "dlq", "show", "0:0")
	for _, want := range []string{
		"record          dev.pingpong.failed:0:0",
		"reason code     not_ping",
		`original request (62 bytes, key "golden-1"):`,
		"  {\n    \"transaction-id\": \"golden-1\",\n    \"payload\": {\n      \"message\": \"pang\"\n    }\n  }",
		"  pingpong_reason_code:      not_ping",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("dlq show 0:0 does not say %q:\n%s", want, show)
		}
	}
	var binary dlq.JSONRecord
	if err := json.Unmarshal([]byte(mustRun(t, env, "dlq", "show", "0:3", "-o", "json")), &binary); err != nil {
		t.Fatal(err)
	}
	if binary.OriginalEncoding != "base64" || !strings.HasPrefix(binary.Reason, "the request is not valid UTF-8") {
		t.Errorf("dlq show 0:3 -o json: %+v", binary)
	}
	if r := runTool(t, env, nil, "dlq", "show", "0:99"); r.code != 1 || !strings.Contains(r.stderr, "no record at 0:99: partition 0 of dev.pingpong.failed holds offsets 0 to 7") {
		t.Errorf("dlq show 0:99: %s", r)
	}

	statsJSON := mustRun(t, env, "dlq", "stats", "-o", "json")
	var stats dlq.JSONStats
	if err := json.Unmarshal([]byte(statsJSON), &stats); err != nil {
		t.Fatal(err)
	}
	// docs/operators.md shows the output of this very run, but for its times.
	if doc := operatorsDocBlock(t, "## `pingpong dlq stats`", "```json\n"); anyTime.ReplaceAllString(doc, "<time>") != anyTime.ReplaceAllString(statsJSON, "<time>") {
		t.Errorf("docs/operators.md's `dlq stats --output json` is not what the binary prints (times aside):\n--- the binary\n%s--- the docs\n%s", statsJSON, doc)
	}
	hours := 0
	for _, n := range stats.ByHour {
		hours += n
	}
	if stats.Records != 8 || stats.ByReason["malformed"] != 6 || stats.ByReason["not_ping"] != 2 || hours != 8 ||
		stats.Omitted != 1 || stats.WithoutOriginal != 1 || stats.Replayed != 1 ||
		stats.Oldest.Offset != 0 || stats.Newest.Offset != 7 {
		t.Errorf("dlq stats: %+v", stats)
	}
	if text := mustRun(t, env, "dlq", "stats"); !strings.Contains(text, "dev.pingpong.failed: 8 records\n") || !strings.Contains(text, "  omitted (too large)             1\n") {
		t.Errorf("dlq stats:\n%s", text)
	}
}

// TestDLQReplayAfterTheCauseIsFixed: pings poisoned because their answers could not be
// published (retries_exhausted) are answered once the broker is fixed and they are replayed.
func TestDLQReplayAfterTheCauseIsFixed(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.Retry.MaxRetries = 1
	servicetest.Start(t, cfg)
	client := servicetest.Client(t, brokers)
	adm := kadm.NewClient(client)
	env := toolEnv(brokers)

	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: servicetest.Topics.Succeeded, Err: kerr.UnknownServerError, Count: -1})
	requests := []*kgo.Record{
		{Topic: servicetest.Topics.Requested, Key: []byte("replay-1"), Value: []byte(`{"transaction-id": "replay-1", "payload": {"message": "ping"}}`),
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}},
		{Topic: servicetest.Topics.Requested, Value: []byte(`{"transaction-id": "replay-2", "payload": {"message": "ping"}}`)},
		// Replayed three times already, and still not a ping.
		{Topic: servicetest.Topics.Requested, Key: []byte("limit-1"), Value: []byte(`{"transaction-id": "limit-1", "payload": {"message": "pang"}}`),
			Headers: []kgo.RecordHeader{{Key: poison.HeaderReplayCount, Value: []byte("3")}}},
	}
	if err := client.ProduceSync(context.Background(), requests...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	awaitRecords(t, adm, 3, servicetest.Topics.Failed)
	fault.Remove()
	requested := endOffset(t, adm, servicetest.Topics.Requested)

	r := runTool(t, env, nil, "dlq", "replay", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "dry run: would replay 2 to dev.pingpong.requested, skip 1; nothing sent\n  skipped 1: replayed 3 times already (--max-replays 3)\n") {
		t.Errorf("dlq replay --dry-run: %s", r)
	}
	// Without --yes and without a terminal: refused before anything is read or sent.
	for _, stdin := range []io.Reader{nil, strings.NewReader("y\n")} {
		r := runTool(t, env, stdin, "dlq", "replay")
		if r.code != 2 || !strings.Contains(r.stderr, "refusing to replay without confirmation: stdin is not a terminal. Pass --yes to replay, or --dry-run") {
			t.Errorf("dlq replay with stdin %T: %s", stdin, r)
		}
	}
	if n := endOffset(t, adm, servicetest.Topics.Requested); n != requested {
		t.Fatalf("a dry run or a refused replay produced %d requests", n-requested)
	}

	r = runTool(t, env, nil, "dlq", "replay", "--reason", "retries_exhausted", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 2 to dev.pingpong.requested, skipped 0, failed 0\n") {
		t.Fatalf("dlq replay --yes: %s", r)
	}

	// The pongs arrive.
	answers := servicetest.NewReader(t, brokers)
	reqs := []servicetest.Request{
		{Tag: "replay-1", Body: []byte("-"), Topic: servicetest.Topics.Succeeded, Answer: string(handlers.PongAnswer([]byte(`"replay-1"`)))},
		{Tag: "replay-2", Body: []byte("-"), Topic: servicetest.Topics.Succeeded, Answer: string(handlers.PongAnswer([]byte(`"replay-2"`)))},
	}
	if tally := answers.Await(t, reqs, 20*time.Second); tally.Answered != 2 || len(tally.Wrong) > 0 {
		t.Fatalf("after the replay: %s %v", tally, tally.Wrong)
	}

	// The replayed requests say where they came from. Requests of one partition are handled
	// concurrently, so their poison records need not be in request order: look them up.
	poisonedAt := map[string]int64{}
	for _, rec := range readFrom(t, brokers, servicetest.Topics.Failed, 0, 3) {
		poisonedAt[headerMap(rec)[handlers.TransactionIDMetadataKey]] = rec.Offset
	}
	replayed := readFrom(t, brokers, servicetest.Topics.Requested, requested, 2)
	for _, rec := range replayed {
		h := headerMap(rec)
		var original *kgo.Record
		for _, req := range requests {
			if string(req.Value) == string(rec.Value) {
				original = req
			}
		}
		if original == nil {
			t.Fatalf("replayed a request that was not sent: %s", rec.Value)
		}
		id := string(original.Key)
		if id == "" {
			id = "replay-2"
		}
		want := fmt.Sprintf("dev.pingpong.failed:0:%d", poisonedAt[id])
		if h[poison.HeaderReplayedFrom] != want || h[poison.HeaderReplayCount] != "1" {
			t.Errorf("replayed %s: headers %v, want from %s, count 1", id, h, want)
		}
		if string(rec.Key) != string(original.Key) {
			t.Errorf("replayed %s with key %q, want the original's %q", id, rec.Key, original.Key)
		}
		if id == "replay-1" && h["traceparent"] == "" {
			t.Errorf("the request's own header was not replayed: %v", h)
		}
	}

	// The limit: limit-1 was replayed three times already.
	r = runTool(t, env, nil, "dlq", "replay", "--transaction-id", "limit-1", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "replayed 0 to dev.pingpong.requested, skipped 1, failed 0\n  skipped 1: replayed 3 times already (--max-replays 3)\n") {
		t.Errorf("dlq replay of a request at the limit: %s", r)
	}
	if n := endOffset(t, adm, servicetest.Topics.Requested); n != requested+2 {
		t.Fatalf("a skipped replay produced %d requests", n-requested-2)
	}
	mustRun(t, env, "dlq", "replay", "--transaction-id", "limit-1", "--yes", "--max-replays", "4")
	awaitRecords(t, adm, 4, servicetest.Topics.Failed)
	var again dlq.JSONRecord
	if err := json.Unmarshal([]byte(mustRun(t, env, "dlq", "show", "0:3", "-o", "json")), &again); err != nil {
		t.Fatal(err)
	}
	if again.TransactionID != "limit-1" || again.ReplayCount != 4 || again.ReplayedFrom != fmt.Sprintf("dev.pingpong.failed:0:%d", poisonedAt["limit-1"]) {
		t.Errorf("the poison record of the fourth replay: %+v", again)
	}
}

// TestDLQReplayAsksOnATerminal runs the binary on a terminal (util-linux's script makes one) and
// answers its question.
func TestDLQReplayAsksOnATerminal(t *testing.T) {
	script := servicetest.RequireTool(t, "script", "apt-get install bsdutils (it gives the binary a terminal)")
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	client := servicetest.Client(t, brokers)
	adm := kadm.NewClient(client)
	poison := &kgo.Record{Topic: servicetest.Topics.Failed, Value: []byte("{}"), Headers: []kgo.RecordHeader{
		{Key: poison.HeaderReasonCode, Value: []byte("panic")},
		{Key: poison.HeaderOriginal, Value: []byte(`{"transaction-id": "tty-1", "payload": {"message": "ping"}}`)},
	}}
	if err := client.ProduceSync(context.Background(), poison).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		answer   string
		code     int
		says     string
		produced int64
	}{
		{"n\n", 2, "not confirmed: nothing replayed", 0},
		{"yes\n", 0, "replayed 1 to dev.pingpong.requested", 1},
	} {
		cmd := exec.Command(script, "--quiet", "--return", "--command", binary+" dlq replay", "/dev/null")
		cmd.Env = append(servicetest.Environ(), toolEnv(brokers)...)
		cmd.Stdin = strings.NewReader(tc.answer)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), "Replay 1 request(s) to dev.pingpong.requested? [y/N]") || !strings.Contains(string(out), tc.says) {
			t.Errorf("answering %q: exit code %d, output:\n%s", tc.answer, code, out)
		}
		if n := endOffset(t, adm, servicetest.Topics.Requested); n != tc.produced {
			t.Errorf("answering %q: %d requests produced, want %d", tc.answer, n, tc.produced)
		}
	}
}

// TestDLQReplayStopsOnCtrlC: Ctrl-C typed at the confirmation prompt, on a terminal, stops the
// command at once with exit code 130 and nothing replayed.
func TestDLQReplayStopsOnCtrlC(t *testing.T) {
	script := servicetest.RequireTool(t, "script", "apt-get install bsdutils (it gives the binary a terminal)")
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	client := servicetest.Client(t, brokers)
	poison := &kgo.Record{Topic: servicetest.Topics.Failed, Value: []byte("{}"), Headers: []kgo.RecordHeader{
		{Key: poison.HeaderReasonCode, Value: []byte("panic")},
		{Key: poison.HeaderOriginal, Value: []byte(`{"transaction-id": "tty-1", "payload": {"message": "ping"}}`)},
	}}
	if err := client.ProduceSync(context.Background(), poison).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "--quiet", "--return", "--command", binary+" dlq replay", "/dev/null")
	cmd.Env = append(servicetest.Environ(), toolEnv(brokers)...)
	keyboard, typing := io.Pipe()
	cmd.Stdin = keyboard
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "[y/N]") {
		if ctx.Err() != nil {
			t.Fatalf("no prompt:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	typing.Write([]byte{3}) // Ctrl-C: the terminal sends SIGINT to the command
	typing.Close()          // Wait waits for the copy of stdin to end
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 || !strings.Contains(out.String(), "interrupted: nothing replayed") {
		t.Errorf("after Ctrl-C at the prompt: %v, output:\n%s", err, out.String())
	}
	if n := endOffset(t, kadm.NewClient(client), servicetest.Topics.Requested); n != 0 {
		t.Errorf("%d requests replayed after Ctrl-C", n)
	}
}

// syncBuffer is a bytes.Buffer that a command writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDLQListFollowsUntilInterrupted: --follow prints records as they arrive and ends cleanly on
// SIGINT.
func TestDLQListFollowsUntilInterrupted(t *testing.T) {
	cluster := servicetest.Cluster(t, 2)
	brokers := cluster.ListenAddrs()
	client := servicetest.Client(t, brokers)
	cmd := exec.Command(binary, "dlq", "list", "--follow")
	cmd.Env = append(servicetest.Environ(), toolEnv(brokers)...)
	lines, stderr := startReadingLines(t, cmd, 100)
	next := func(what string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the output ended before %s", what)
			}
			return line
		case <-time.After(15 * time.Second):
			t.Fatalf("no %s within 15s", what)
		}
		return ""
	}
	if header := next("table header"); !strings.HasPrefix(header, "TIME ") {
		t.Fatalf("first line %q", header)
	}
	poison := &kgo.Record{Topic: servicetest.Topics.Failed, Partition: 1, Key: []byte("follow-1"), Value: []byte("{}"), Headers: []kgo.RecordHeader{
		{Key: poison.HeaderReasonCode, Value: []byte("not_ping")},
		{Key: "transaction_id", Value: []byte("follow-1")},
	}}
	if err := client.ProduceSync(context.Background(), poison).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if row := next("row for the new record"); !strings.Contains(row, " 1:0 ") || !strings.Contains(row, "follow-1") {
		t.Errorf("row %q", row)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines { // to the end of the output
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGINT: %v %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still following 10s after SIGINT")
	}
}

// TestToolsCannotReachKafka: a closed port is at once the service's own "no broker listens"
// error, exit code 1, not KAFKA_TIMEOUT of silence (a minute here, longer than the test waits).
func TestToolsCannotReachKafka(t *testing.T) {
	addr := freeAddr(t)
	env := []string{"KAFKA_BROKERS=" + addr, "KAFKA_TIMEOUT=1m"}
	want := "pingpong: no broker listens at KAFKA_BROKERS=" + addr + ": "
	var wg sync.WaitGroup
	for _, args := range [][]string{
		{"dlq", "list"},
		{"dlq", "show", "0:0"},
		{"dlq", "stats"},
		{"dlq", "replay", "--yes"},
		{"ping", "--count", "1"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runTool(t, env, nil, args...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
				t.Errorf("pingpong %s: %s", strings.Join(args, " "), r)
			}
			if r.elapsed > 30*time.Second {
				t.Errorf("pingpong %s took %v: it waited for KAFKA_TIMEOUT", strings.Join(args, " "), r.elapsed)
			}
		}()
	}
	wg.Wait()
}

// TestToolsRejectBadUsage: exit code 2 and the problem named, before Kafka is reached.
func TestToolsRejectBadUsage(t *testing.T) {
	env := []string{"KAFKA_BROKERS=" + freeAddr(t)}
	for _, tc := range []struct {
		args []string
		env  string
		says string
	}{
		{[]string{"dlq", "list", "--reason", "bogus"}, "", `--reason: unknown reason code "bogus": use one of malformed, not_ping, retries_exhausted, panic, undecodable_batch, none`},
		{[]string{"dlq", "list", "--since", "yesterday"}, "", `--since "yesterday" is neither a time`},
		{[]string{"dlq", "list", "--since", "1h", "--until", "2h"}, "", "--since (" /* ... */},
		{[]string{"dlq", "list", "--follow", "--until", "1h"}, "", "--follow and --until do not go together"},
		{[]string{"dlq", "list", "--offset", "zero"}, "", `--offset "zero" is not <partition>:<offset>`},
		{[]string{"dlq", "list", "--output", "yaml"}, "", `--output "yaml": must be table or json`},
		{[]string{"dlq", "list", "--no-such-flag"}, "", "unknown flag: --no-such-flag"},
		{[]string{"dlq", "show"}, "", "which record? give its position, <partition>:<offset>, as the AT column of 'pingpong dlq list' shows it: pingpong dlq show 0:0"},
		{[]string{"dlq", "show", "0:0", "0:1"}, "", "one record at a time: one <partition>:<offset>, not 2 arguments"},
		// A command's flag given before the command: say whose it is.
		{[]string{"--count", "3"}, "", "unknown flag: --count for 'pingpong': --count is a flag of 'pingpong ping'; put it after the command, as in 'pingpong ping --count'"},
		{[]string{"-c", "3"}, "", "-c is a flag of 'pingpong ping'"},
		{[]string{"dlq", "--reason", "malformed"}, "", "--reason is a flag of 'pingpong dlq list', 'pingpong dlq replay' or 'pingpong dlq stats'"},
		{[]string{"ping", "--dry-run"}, "", "--dry-run is a flag of 'pingpong dlq replay'"},
		{[]string{"dlq", "show", "nope"}, "", `"nope" is not <partition>:<offset>`},
		{[]string{"dlq", "replay", "--max-replays", "-1"}, "", "--max-replays must be 0 or more"},
		{[]string{"ping", "--count", "0"}, "", "nothing to send"},
		{[]string{"dlq", "stats"}, "KAFKA_TIMEOUT=soon", `invalid KAFKA_TIMEOUT (--kafka-timeout) "soon"`},
		{[]string{"ping"}, "TOPIC_PREFIX=a/b", "invalid TOPIC_PREFIX (--topic-prefix)"},
		// Typos: cobra's suggestions, exit code 2, not the help and 0.
		{[]string{"pign"}, "", "unknown command \"pign\" for \"pingpong\"\n\nDid you mean this?\n\tping\n"},
		{[]string{"dlq", "lsit"}, "", "unknown command \"lsit\" for \"pingpong dlq\"\n\nDid you mean this?\n\tlist\n"},
		{[]string{"topics", "crate"}, "", "Did you mean this?\n\tcreate\n"},
		{[]string{"version", "now"}, "", `unknown command "now" for "pingpong version"`},
	} {
		r := runTool(t, append(env, tc.env), nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("pingpong %s (%s): want exit code 2 and %q, got %s", strings.Join(tc.args, " "), tc.env, tc.says, r)
		}
	}
}

// TestToolCompletions: the shell completions offer the reason codes and the output formats.
func TestToolCompletions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "dlq", "list", "--reason", ""}, dlq.ReasonCodes()},
		{[]string{"__complete", "dlq", "replay", "--reason", ""}, dlq.ReasonCodes()},
		{[]string{"__complete", "dlq", "list", "--output", ""}, []string{"table", "json"}},
		{[]string{"__complete", "dlq", "stats", "-o", ""}, []string{"text", "json"}},
		{[]string{"__complete", "dlq", ""}, []string{"list", "replay", "show", "stats"}},
	} {
		out := mustRun(t, nil, tc.args...)
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(line, ":") && !strings.HasPrefix(line, "Completion ended") {
				got = append(got, strings.SplitN(line, "\t", 2)[0])
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.args, got, tc.want)
		}
	}
	if out := mustRun(t, nil, "completion", "bash"); !strings.Contains(out, "__start_pingpong") {
		t.Errorf("completion bash: no completion script")
	}
}

func TestConfirmTakesOnlyYes(t *testing.T) {
	for answer, want := range map[string]bool{"y\n": true, "YES\n": true, " yes \n": true, "y": true, "n\n": false, "\n": false, "": false, "yep\n": false} {
		var out bytes.Buffer
		if got, err := confirm(context.Background(), strings.NewReader(answer), &out, "Replay? "); got != want || err != nil {
			t.Errorf("answer %q: %v %v, want %v", answer, got, err, want)
		}
		if !strings.HasPrefix(out.String(), "Replay? ") {
			t.Errorf("the question was not asked: %q", out.String())
		}
	}
}

// readFrom reads n records of a one-partition topic from offset.
func readFrom(t *testing.T, brokers []string, topic string, offset int64, n int) []*kgo.Record {
	t.Helper()
	cl := servicetest.Client(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) < n {
		t.Fatalf("read %d records from %s, want %d", len(got), topic, n)
	}
	return got
}

func headerMap(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

// startReadingLines starts cmd and returns its output's lines, as they come, and its standard
// error; the process is killed when the test ends.
func startReadingLines(t *testing.T, cmd *exec.Cmd, buffered int) (<-chan string, *bytes.Buffer) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string, buffered)
	go func() {
		defer close(lines)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
	}()
	return lines, stderr
}

// freeAddr is a loopback address where nothing listens (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
