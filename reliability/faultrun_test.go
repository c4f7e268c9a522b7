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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
// sets the pause between faults. FAULT_DELIVERY=exactly-once runs the instances in exactly-once
// mode (each slot keeps its transactional id across restarts) and fails on any duplicate, as a
// read_committed reader sees them. FAULT_CLUSTER=1 spreads the requests over the partitions,
// makes 2% of them malformed (answered on .failed), writes more in transactions that abort
// (never to be answered), and makes half the faults the cluster's: coordinators moved, writes of
// answers refused for a second, offset commits, fetches or group requests refused. An independent reader then judges: every request answered, no
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
	exactlyOnce := os.Getenv("FAULT_DELIVERY") == "exactly-once"
	withCluster := os.Getenv("FAULT_CLUSTER") != ""
	started := 0
	start := func(slot int) *instance {
		bin := binary
		if b := os.Getenv("FAULT_BINARY"); b != "" {
			bin = b
		}
		cmd := exec.Command(bin)
		cmd.Env = append(servicetest.Environ(), "KAFKA_BROKERS="+strings.Join(brokers, ","), "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json", "LOG_LEVEL=info")
		if exactlyOnce {
			// A slot's restart takes its predecessor's transactional id, as a pod's does.
			cmd.Env = append(cmd.Env, "KAFKA_DELIVERY=exactly-once", "KAFKA_TRANSACTIONAL_ID=faultrun-"+strconv.Itoa(slot))
		}
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
	insts := []*instance{start(0), start(1), start(2)}
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
	malformed := map[int]bool{} // requests whose answer is on .failed
	var abortedIDs func() map[string]bool
	if withCluster {
		abortedIDs = abortedRequests(t, brokers)
	}
	deadline := time.Now().Add(dur)
	nextFault := time.Now().Add(3 * time.Second)
	rng := rand.New(rand.NewPCG(seed, seed))
	actions := map[string]int{}
	for time.Now().Before(deadline) {
		var recs []*kgo.Record
		for range 50 {
			id := "tx-" + strconv.Itoa(n%ids)
			rec := &kgo.Record{Topic: servicetest.Topics.Requested, Key: []byte(id),
				Value:   []byte(`{"transaction-id": "` + id + `", "payload": {"message": "ping"}}`),
				Headers: []kgo.RecordHeader{{Key: poison.HeaderCorrelationID, Value: []byte(strconv.Itoa(n))}}}
			if withCluster {
				rec.Partition = int32(n % ids % partitions)
				if n%50 == 7 { // 2% hostile: not even JSON, answered on .failed
					rec.Key, rec.Value = nil, []byte("not json "+strconv.Itoa(n))
					malformed[n] = true
				}
			}
			recs = append(recs, rec)
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
			if withCluster && rng.IntN(2) == 0 {
				what := clusterFault(rng, cluster)
				actions[what]++
				trace.logf("FAULT %s", what)
			} else if in.stopped {
				_ = in.cmd.Process.Signal(syscall.SIGCONT)
				in.stopped = false
				actions["cont"]++
				trace.logf("FAULT cont pid %d", pid)
			} else {
				switch rng.IntN(3) {
				case 0:
					_ = in.cmd.Process.Kill()
					trace.logf("FAULT kill pid %d", pid)
					insts[i] = start(i)
					actions["kill"]++
				case 1:
					_ = in.cmd.Process.Signal(syscall.SIGTERM)
					trace.logf("FAULT term pid %d", pid)
					time.Sleep(200 * time.Millisecond)
					insts[i] = start(i)
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
			if s, ok := runRequest(a); ok {
				seen[s] = true
			}
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
	outOfOrder, wrong, abortedAnswered := 0, 0, 0
	for _, a := range answers {
		s, ok := runRequest(a)
		if !ok {
			if strings.HasPrefix(a.Key, "aborted-") {
				abortedAnswered++ // a request of an aborted transaction
			}
			continue
		}
		seen[s]++
		if want := servicetest.Topics.Succeeded; malformed[s] && a.Topic != servicetest.Topics.Failed || !malformed[s] && a.Topic != want {
			wrong++
		}
		if malformed[s] {
			continue
		}
		m := answeredUpTo[a.Key]
		if m == nil {
			m = map[int]bool{}
			answeredUpTo[a.Key] = m
		}
		for prev := s - ids; prev >= 0; prev -= ids {
			if !m[prev] && !malformed[prev] {
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
	aborted := 0
	if abortedIDs != nil {
		aborted = len(abortedIDs())
	}
	t.Logf("FAULTRUN delivery %s, cluster faults %v: sent %d (%d malformed, %d more in aborted transactions), answered %d distinct, %d answers, %d duplicates, %d out of order, %d wrong, %d aborted answered",
		map[bool]string{true: "exactly-once", false: "at-least-once"}[exactlyOnce], withCluster, n, len(malformed), aborted, len(seen), len(answers), dups, outOfOrder, wrong, abortedAnswered)
	if len(seen) < n || outOfOrder > 0 || wrong > 0 || abortedAnswered > 0 || exactlyOnce && dups > 0 {
		t.Errorf("lost %d, out of order %d, wrong %d, aborted answered %d, duplicates %d", n-len(seen), outOfOrder, wrong, abortedAnswered, dups)
	}
}

// runRequest is the number of the fault run's request that a answers, from the correlation id
// its request carried; false for an answer to another request (one of an aborted transaction).
func runRequest(a servicetest.Answer) (int, bool) {
	s, err := strconv.Atoi(a.Headers[poison.HeaderCorrelationID])
	return s, err == nil
}

// clusterFault makes one fault of the cluster, at random, and names it: the coordinators move,
// answers cannot be written for a second, or a few offset commits, fetches or group requests
// fail.
func clusterFault(rng *rand.Rand, cluster *kfake.Cluster) string {
	burst := func(f kfake.Fault, d time.Duration) {
		h := cluster.Fault(f)
		time.AfterFunc(d, h.Remove)
	}
	switch rng.IntN(5) {
	case 0:
		cluster.RehashCoordinators()
		return "coordinators moved"
	case 1:
		burst(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: servicetest.Topics.Succeeded, Err: kerr.UnknownServerError, Count: -1}, time.Second)
		return "answers refused 1 s"
	case 2:
		burst(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit, kmsg.TxnOffsetCommit}, Err: kerr.UnknownServerError, Count: 3}, time.Minute)
		return "3 offset commits refused"
	case 3:
		burst(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Err: kerr.NotLeaderForPartition, Count: 5}, time.Minute)
		return "5 fetches refused"
	default:
		burst(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat, kmsg.JoinGroup, kmsg.SyncGroup}, Err: kerr.CoordinatorNotAvailable, Count: 3}, time.Minute)
		return "3 group requests refused"
	}
}
