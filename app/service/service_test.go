package service_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pingpong/pingpong/app/config"
	"github.com/pingpong/pingpong/app/logging"
	"github.com/pingpong/pingpong/app/service"
	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

func TestAnswersEveryRequestAcrossPartitions(t *testing.T) {
	for _, transport := range []string{config.TransportFranz, config.TransportWatermill} {
		t.Run(transport, func(t *testing.T) { testAnswersEveryRequest(t, transport) })
	}
}

func testAnswersEveryRequest(t *testing.T, transport string) {
	cluster := servicetest.Cluster(t, 4)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.Transport.Name = transport
	svc := servicetest.Start(t, cfg)
	client := servicetest.Client(t, brokers)

	reqs := servicetest.Mix("e2e", 400, 4)
	records := servicetest.Produce(t, client, reqs)
	tally := servicetest.NewReader(t, brokers).Await(t, reqs, 30*time.Second)
	t.Log(tally)
	if len(tally.Missing) > 0 || len(tally.Wrong) > 0 {
		t.Fatalf("%s\nmissing: %v\nwrong: %v", tally, head(tally.Missing), head(tally.Wrong))
	}
	if tally.Duplicates != 0 {
		t.Errorf("%d duplicates without any fault", tally.Duplicates)
	}

	// The poison headers point at the exact source record.
	offsets := map[string]int64{}
	for i, r := range reqs {
		offsets[string(r.Body)] = records[i].Offset
	}
	reader := servicetest.NewReader(t, brokers)
	reader.Await(t, reqs, 10*time.Second)
	for _, a := range reader.Answers() {
		if a.Topic != servicetest.Topics.Failed {
			continue
		}
		want := strconv.FormatInt(offsets[a.Headers[poison.HeaderOriginal]], 10)
		if got := a.Headers[poison.HeaderOffset]; got != want {
			t.Errorf("source offset %s, want %s", got, want)
		}
	}

	// Every input offset is committed once its answer is out.
	adm := kadm.NewClient(servicetest.Client(t, brokers))
	deadline := time.Now().Add(15 * time.Second)
	for {
		lag, err := adm.Lag(context.Background(), cfg.ConsumerGroup)
		if err == nil && lag[cfg.ConsumerGroup].Lag.Total() == 0 && len(lag[cfg.ConsumerGroup].Lag) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group's offsets were not all committed: %v %v", lag[cfg.ConsumerGroup].Lag, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	metrics := get(t, "http://"+svc.HTTPAddr()+"/metrics", http.StatusOK)
	for _, line := range []string{
		`pingpong_requests_total{outcome="pong"} 240`,
		`pingpong_requests_total{outcome="not_ping"} 80`,
		`pingpong_requests_total{outcome="malformed"} 80`,
		`pingpong_poisoned_total{reason="malformed"} 80`,
		`pingpong_messages_in_flight 0`,
		`pingpong_watermill_handler_execution_time_seconds_count{handler_name="pingpong",success="true"} 400`,
		`pingpong_build_info{`,
		`go_goroutines `,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics has no %s", line)
		}
	}
	if err := svc.Stop(); err != nil {
		t.Errorf("a clean shutdown returns no error: %v", err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	dir := t.TempDir()
	cluster := servicetest.Cluster(t, 1, kfake.DataDir(dir))
	addr := cluster.ListenAddrs()[0]
	svc := servicetest.Start(t, servicetest.Config(t, cluster.ListenAddrs()))
	base := "http://" + svc.HTTPAddr()
	if body := get(t, base+"/healthz", http.StatusOK); strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz %q", body)
	}
	waitFor(t, 10*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })
	// Readiness follows the broker: with no broker answering, not ready.
	cluster.Close()
	waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusServiceUnavailable })
	if status(base+"/healthz") != http.StatusOK {
		t.Error("the process stays alive (healthz) while the broker is away")
	}
	// The broker comes back on the same port with what it had: ready again.
	_, port, _ := net.SplitHostPort(addr)
	portNumber, _ := strconv.Atoi(port)
	back, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(portNumber), kfake.DataDir(dir))
	if err != nil {
		t.Fatalf("restarting the broker on %s: %v", addr, err)
	}
	t.Cleanup(back.Close)
	waitFor(t, 15*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })
}

func TestTransientPublishFailuresAreRetriedThenAnswered(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	svc := servicetest.Start(t, cfg)
	// An error Sarama does not retry itself, so each one reaches the Retry middleware.
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: servicetest.Topics.Succeeded, Err: kerr.UnknownServerError, Count: 3})

	reqs := servicetest.Mix("transient", 1, 1)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	tally := servicetest.NewReader(t, brokers).Await(t, reqs, 30*time.Second)
	if tally.Answered != 1 || len(tally.Wrong) > 0 {
		t.Fatalf("%s %v", tally, tally.Wrong)
	}
	metrics := get(t, "http://"+svc.HTTPAddr()+"/metrics", http.StatusOK)
	for _, line := range []string{`pingpong_retries_total 3`, `pingpong_requests_total{outcome="pong"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics has no %s", line)
		}
	}
}

func TestPermanentPublishFailureIsPoisoned(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	brokers := cluster.ListenAddrs()
	cfg := servicetest.Config(t, brokers)
	cfg.Retry.MaxRetries = 2
	servicetest.Start(t, cfg)
	fault := cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: servicetest.Topics.Succeeded, Err: kerr.UnknownServerError, Count: -1})
	defer fault.Remove()

	reqs := servicetest.Mix("permanent", 1, 1)
	reqs[0].Topic = servicetest.Topics.Failed
	reqs[0].ReasonCode = poison.ReasonRetriesExhausted
	reader := servicetest.NewReader(t, brokers)
	servicetest.Produce(t, servicetest.Client(t, brokers), reqs)
	tally := reader.Await(t, reqs, 30*time.Second)
	if tally.Answered != 1 {
		t.Fatalf("%s", tally)
	}
	a := reader.Answers()[0]
	wantPrefix := `{"transaction-id": "permanent-0", "payload": {"message": "Error processing the event: publishing the answer to dev.pingpong.succeeded: `
	if !strings.HasPrefix(a.Value, wantPrefix) {
		t.Errorf("answer %s\nwant prefix %s", a.Value, wantPrefix)
	}
	if a.Headers[poison.HeaderAttempts] != "3" || a.Headers[poison.HeaderReasonCode] != string(poison.ReasonRetriesExhausted) {
		t.Errorf("headers %v", a.Headers)
	}
	if a.Key != "permanent-0" {
		t.Errorf("the poison record's key is the transaction id, got %q", a.Key)
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	return string(body)
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true within %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// A burst of /readyz calls is answered from the last probe: the cluster sees a handful of
// Metadata requests, not one a call (a client loop once sent 2,224 a second).
func TestReadinessBurstCostsTheClusterAFewRequests(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	svc := servicetest.Start(t, servicetest.Config(t, cluster.ListenAddrs()))
	base := "http://" + svc.HTTPAddr()
	waitFor(t, 10*time.Second, func() bool { return status(base+"/readyz") == http.StatusOK })

	var metadata atomic.Int64
	cluster.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		metadata.Add(1)
		return nil, nil, false
	})
	const calls = 300
	start := time.Now()
	for range calls {
		if code := status(base + "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz %d during the burst", code)
		}
	}
	elapsed := time.Since(start)
	// One probe a second, plus the other clients' own Metadata requests (a few at most).
	if got, most := metadata.Load(), int64(elapsed/time.Second)+5; got > most {
		t.Errorf("%d /readyz calls in %v sent %d Metadata requests, want at most %d", calls, elapsed, got, most)
	}
	t.Logf("%d /readyz calls in %v: %d Metadata requests at the broker", calls, elapsed.Round(time.Millisecond), metadata.Load())
}

// The Kafka client's own log (its connections, group joins and retries) shows at
// LOG_LEVEL=debug, tagged component=franz-go, and not at the default level, where the service
// explains a failing fetch or publish itself.
func TestTheKafkaClientsLogShowsAtDebugOnly(t *testing.T) {
	cluster := servicetest.Cluster(t, 1)
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			cfg := servicetest.Config(t, cluster.ListenAddrs())
			cfg.Logging.Level, cfg.Logging.Format = level, "json"
			cfg.ConsumerGroup = "log-" + level
			logs := &servicetest.SyncBuffer{}
			logger, err := logging.New(cfg.Logging, logs)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := service.New(cfg, logger, service.WithTracer(nil))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx) }()
			waitFor(t, 15*time.Second, func() bool { return status("http://"+svc.HTTPAddr()+"/readyz") == http.StatusOK })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			clientLines := 0
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if strings.Contains(line, `"component":"franz-go"`) {
					clientLines++
					if !strings.Contains(line, `"level":"debug"`) {
						t.Errorf("the client's line is not at debug: %s", line)
					}
				}
			}
			if shown := clientLines > 0; shown != (level == "debug") {
				t.Errorf("LOG_LEVEL=%s: %d lines of the Kafka client's own log", level, clientLines)
			}
			if level == "debug" && !strings.Contains(logs.String(), `"msg":"joining group"`) {
				t.Errorf("the client's group join is not in the debug log:\n%s", logs)
			}
		})
	}
}
