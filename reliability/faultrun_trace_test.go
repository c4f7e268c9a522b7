package reliability_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupTrace writes the fault run's group as the broker sees it to group.log: the faults, every
// JoinGroup, SyncGroup, LeaveGroup and Heartbeat request, and the group's state and members
// whenever they change, each member with the pid of the process at the other end of its
// connection ("gone" when none is). It is how the rebalance stall was found
// (docs/reliability.md).
type groupTrace struct {
	mu sync.Mutex
	f  *os.File
}

func newGroupTrace(t *testing.T, dir string) *groupTrace {
	f, err := os.Create(filepath.Join(dir, "group.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &groupTrace{f: f}
}

func (g *groupTrace) logf(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fmt.Fprintf(g.f, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// watch logs the group requests c receives; it only looks, the broker answers them as usual.
func (g *groupTrace) watch(c *kfake.Cluster) {
	c.ControlKey(-1, func(req kmsg.Request) (kmsg.Response, error, bool) {
		switch r := req.(type) {
		case *kmsg.JoinGroupRequest:
			var reason string
			if r.Reason != nil {
				reason = *r.Reason
			}
			g.logf("JOIN member=%q rebalance=%d session=%d reason=%s", shortID(r.MemberID), r.RebalanceTimeoutMillis, r.SessionTimeoutMillis, reason)
		case *kmsg.SyncGroupRequest:
			g.logf("SYNC member=%q gen=%d plan=%v", shortID(r.MemberID), r.Generation, len(r.GroupAssignment) > 0)
		case *kmsg.LeaveGroupRequest:
			var ids []string
			for _, m := range r.Members {
				ids = append(ids, shortID(m.MemberID))
			}
			g.logf("LEAVE members=%q", ids)
		case *kmsg.HeartbeatRequest:
			g.logf("HB member=%q gen=%d", shortID(r.MemberID), r.Generation)
		}
		return nil, nil, false
	})
}

// poll describes the group every half second until ctx ends and logs it when it changed.
func (g *groupTrace) poll(ctx context.Context, adm *kadm.Client) {
	last := ""
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		described, err := adm.DescribeGroups(dctx, "pingpong")
		cancel()
		s := "GROUP "
		if err != nil {
			s += err.Error()
		} else {
			d := described["pingpong"]
			pids := processes()
			var ms []string
			for _, m := range d.Members {
				ms = append(ms, shortID(m.MemberID)+"@"+m.ClientHost+"("+pids(m.ClientHost)+")")
			}
			sort.Strings(ms)
			s += fmt.Sprintf("state=%s members=%d %v", d.State, len(d.Members), ms)
		}
		if s != last {
			g.logf("%s", s)
			last = s
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// processes maps a local TCP endpoint (ip:port) to the pid holding it, from ss; "?" for all
// when ss cannot say.
func processes() func(endpoint string) string {
	out, err := exec.Command("ss", "-tnpH").Output()
	if err != nil {
		return func(string) string { return "?" }
	}
	pids := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if _, rest, ok := strings.Cut(line, "pid="); ok {
			pid, _, _ := strings.Cut(rest, ",")
			pids[f[3]] = "pid " + pid
		}
	}
	return func(endpoint string) string {
		if pid, ok := pids[strings.TrimPrefix(endpoint, "/")]; ok {
			return pid
		}
		return "gone"
	}
}

// shortID is enough of a member id to tell the members of a run apart.
func shortID(id string) string { return id[max(0, len(id)-8):] }
