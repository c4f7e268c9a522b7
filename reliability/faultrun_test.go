package reliability_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/servicetest"
	"github.com/pingpong/pingpong/poison"
)

// instance is one of the fault run's running binaries.
type instance struct {
	cmd     *exec.Cmd
	stopped bool // by SIGSTOP, not continued yet
}

// TestRandomizedFaultRun is a figures command, not part of the suite's promises by default: it
// runs only when FAULT_FOR says how long to send (FAULT_FOR=120s go test ./reliability -run
// FaultRun -v). Three instances of the built binary (or FAULT_BINARY, to compare builds) share
// the group while about 1,000 pings a second over 200 ids arrive, and every 2 to 6 s one of them
// is killed (SIGKILL) and restarted, stopped (SIGTERM) and restarted, paused (SIGSTOP, past the
// session timeout) or continued. FAULT_SEED fixes the faults' order. An independent reader then
// judges: every request answered, no answer before an earlier request of its id was answered,
// nothing wrong; duplicates are counted (delivery is at least once). docs/reliability.md has
// the figures.
func TestRandomizedFaultRun(t *testing.T) {
	dur, _ := time.ParseDuration(os.Getenv("FAULT_FOR"))
	if dur == 0 {
		t.Skip("a figures command: set FAULT_FOR (e.g. 120s) to run it")
	}
	seed, _ := strconv.ParseUint(os.Getenv("FAULT_SEED"), 10, 64)
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("FAULT_SEED=%d", seed)
	logs, err := os.MkdirTemp("", "pingpong-faultrun-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the instances' logs: %s", logs)
	const ids = 200
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	started := 0
	start := func() *instance {
		bin := binary
		if b := os.Getenv("FAULT_BINARY"); b != "" {
			bin = b
		}
		cmd := exec.Command(bin)
		cmd.Env = append(servicetest.Environ(), "KAFKA_BROKERS="+strings.Join(brokers, ","), "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json", "LOG_LEVEL=info")
		started++
		f, err := os.Create(filepath.Join(logs, "instance-"+strconv.Itoa(started)+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
		return &instance{cmd: cmd}
	}
	insts := []*instance{start(), start(), start()}
	t.Cleanup(func() {
		for _, in := range insts {
			_ = in.cmd.Process.Kill()
		}
	})
	reader := servicetest.NewReader(t, brokers)
	producer := servicetest.Client(t, brokers)
	ctx := context.Background()
	n := 0
	partitionOf, offsetOf := map[int]int32{}, map[int]int64{}
	deadline := time.Now().Add(dur)
	nextFault := time.Now().Add(3 * time.Second)
	rng := rand.New(rand.NewPCG(seed, seed))
	actions := map[string]int{}
	for time.Now().Before(deadline) {
		var recs []*kgo.Record
		for range 50 {
			id := "tx-" + strconv.Itoa(n%ids)
			recs = append(recs, &kgo.Record{Topic: servicetest.Topics.Requested, Key: []byte(id),
				Value:   []byte(`{"transaction-id": "` + id + `", "payload": {"message": "ping"}}`),
				Headers: []kgo.RecordHeader{{Key: poison.HeaderCorrelationID, Value: []byte(strconv.Itoa(n))}}})
			n++
		}
		res := producer.ProduceSync(ctx, recs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			s, _ := strconv.Atoi(string(r.Record.Headers[0].Value))
			partitionOf[s] = r.Record.Partition
			offsetOf[s] = r.Record.Offset
		}
		if time.Now().After(nextFault) {
			nextFault = time.Now().Add(time.Duration(2000+rng.IntN(4000)) * time.Millisecond)
			i := rng.IntN(len(insts))
			in := insts[i]
			if in.stopped {
				_ = in.cmd.Process.Signal(syscall.SIGCONT)
				in.stopped = false
				actions["cont"]++
			} else {
				switch rng.IntN(3) {
				case 0:
					_ = in.cmd.Process.Kill()
					insts[i] = start()
					actions["kill"]++
				case 1:
					_ = in.cmd.Process.Signal(syscall.SIGTERM)
					time.Sleep(200 * time.Millisecond)
					insts[i] = start()
					actions["term"]++
				case 2:
					_ = in.cmd.Process.Signal(syscall.SIGSTOP)
					in.stopped = true
					actions["stop"]++
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, in := range insts {
		if in.stopped {
			_ = in.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Logf("sent %d requests; faults %v", n, actions)
	waitUntil := time.Now().Add(150 * time.Second)
	for {
		reader.Await(t, nil, 200*time.Millisecond)
		seen := map[int]bool{}
		for _, a := range reader.Answers() {
			s, _ := strconv.Atoi(a.Headers[poison.HeaderCorrelationID])
			seen[s] = true
		}
		if len(seen) >= n {
			break
		}
		if time.Now().After(waitUntil) {
			missing := map[int32][]int64{}
			for s := 0; s < n; s++ {
				if !seen[s] {
					missing[partitionOf[s]] = append(missing[partitionOf[s]], offsetOf[s])
				}
			}
			for p, offs := range missing {
				t.Logf("partition %d: %d missing, offsets %v ... %v", p, len(offs), offs[0], offs[len(offs)-1])
			}
			adm := kadm.NewClient(producer)
			committed, err := adm.FetchOffsets(ctx, "pingpong")
			t.Logf("committed %v err %v", committed, err)
			for i, in := range insts {
				t.Logf("instance %d pid %d stopped %v", i, in.cmd.Process.Pid, in.stopped)
			}
			t.Fatalf("%d requests not answered within 150 s of the last fault; the instances' logs are in %s", n-len(seen), logs)
		}
	}
	answers := reader.Answers()
	seen := map[int]int{}
	// A request of an id is answered only once every earlier request of the id has been.
	answeredUpTo := map[string]map[int]bool{}
	outOfOrder, wrong := 0, 0
	for _, a := range answers {
		s, _ := strconv.Atoi(a.Headers[poison.HeaderCorrelationID])
		seen[s]++
		if a.Topic != servicetest.Topics.Succeeded {
			wrong++
		}
		m := answeredUpTo[a.Key]
		if m == nil {
			m = map[int]bool{}
			answeredUpTo[a.Key] = m
		}
		for prev := s - ids; prev >= 0; prev -= ids {
			if !m[prev] {
				outOfOrder++
				break
			}
		}
		m[s] = true
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("FAULTRUN sent %d, answered %d distinct, %d answers, %d duplicates, %d out of order, %d wrong", n, len(seen), len(answers), dups, outOfOrder, wrong)
	if len(seen) < n || outOfOrder > 0 || wrong > 0 {
		t.Errorf("lost %d, out of order %d, wrong %d", n-len(seen), outOfOrder, wrong)
	}
}
