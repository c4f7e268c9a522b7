package reliability_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
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

// faultGaps is the shortest and the longest pause between two faults: FAULT_EVERY (min-max),
// 2s-6s by default.
func faultGaps(t *testing.T) (time.Duration, time.Duration) {
	every := os.Getenv("FAULT_EVERY")
	if every == "" {
		return 2 * time.Second, 6 * time.Second
	}
	lo, hi, _ := strings.Cut(every, "-")
	minGap, err1 := time.ParseDuration(lo)
	maxGap, err2 := time.ParseDuration(hi)
	if err1 != nil || err2 != nil || minGap <= 0 || maxGap <= minGap {
		t.Fatalf("FAULT_EVERY=%q: want two durations min-max, 0 < min < max, e.g. 1s-3s", every)
	}
	return minGap, maxGap
}

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
// session timeout) or continued. FAULT_SEED fixes the faults' order; FAULT_EVERY (e.g. 1s-3s)
// sets the pause between faults. An independent reader then judges: every request answered, no
// answer before an earlier request of its id was answered, nothing wrong; duplicates are counted
// (delivery is at least once). The run's directory also gets group.log, the group as the broker
// saw it (groupTrace). docs/reliability.md has the figures.
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
	trace := newGroupTrace(t, logs)
	trace.watch(cluster)
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
		trace.logf("FAULT start instance-%d pid %d", started, cmd.Process.Pid)
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
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	go trace.poll(tctx, kadm.NewClient(producer))
	minGap, maxGap := faultGaps(t)
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
			nextFault = time.Now().Add(minGap + time.Duration(rng.IntN(int((maxGap-minGap)/time.Millisecond)))*time.Millisecond)
			i := rng.IntN(len(insts))
			in := insts[i]
			pid := in.cmd.Process.Pid
			if in.stopped {
				_ = in.cmd.Process.Signal(syscall.SIGCONT)
				in.stopped = false
				actions["cont"]++
				trace.logf("FAULT cont pid %d", pid)
			} else {
				switch rng.IntN(3) {
				case 0:
					_ = in.cmd.Process.Kill()
					trace.logf("FAULT kill pid %d", pid)
					insts[i] = start()
					actions["kill"]++
				case 1:
					_ = in.cmd.Process.Signal(syscall.SIGTERM)
					trace.logf("FAULT term pid %d", pid)
					time.Sleep(200 * time.Millisecond)
					insts[i] = start()
					actions["term"]++
				case 2:
					_ = in.cmd.Process.Signal(syscall.SIGSTOP)
					trace.logf("FAULT stop pid %d", pid)
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
			in.stopped = false
			trace.logf("FAULT cont pid %d (end)", in.cmd.Process.Pid)
		}
	}
	trace.logf("FAULT end of faults")
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
				t.Logf("instance %d pid %d", i, in.cmd.Process.Pid)
			}
			if f, err := os.Create(filepath.Join(logs, "goroutines.txt")); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(f, 2)
				f.Close()
			}
			t.Fatalf("%d requests not answered within 150 s of the last fault; the instances' logs, the group's (group.log) and the test's goroutines are in %s", n-len(seen), logs)
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
