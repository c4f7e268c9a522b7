package transport_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/pingpong/pingpong/app/logging"
	"github.com/pingpong/pingpong/app/transport"
)

func TestAssignmentIsLoggedAndCounted(t *testing.T) {
	logs := &bytes.Buffer{}
	logger := logrus.New()
	logger.SetOutput(logs)
	logger.SetFormatter(&logrus.JSONFormatter{})
	reg := prometheus.NewRegistry()
	a := transport.NewAssignment(reg, logging.Watermill(logrus.NewEntry(logger)))

	a.Assigned("member-1", 4, map[string][]int32{"t.requested": {3, 0, 2}})
	want := `
# HELP pingpong_partitions_assigned Partitions of the input topic this instance consumes now (0 while the group rebalances).
# TYPE pingpong_partitions_assigned gauge
pingpong_partitions_assigned 3
# HELP pingpong_rebalances_total Partition assignments received from the consumer group: one per rebalance this instance took part in.
# TYPE pingpong_rebalances_total counter
pingpong_rebalances_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	a.Revoked("member-1", 4)
	revoked := strings.Replace(want, "pingpong_partitions_assigned 3", "pingpong_partitions_assigned 0", 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(revoked)); err != nil {
		t.Errorf("after the revocation: %v", err)
	}
	for _, line := range []string{
		`"msg":"Consumer group partitions assigned"`, `"generation":4`, `"member_id":"member-1"`, `"partitions_count":3`,
		`"msg":"Consumer group partitions revoked"`, `"partitions":{"t.requested":[0,2,3]}`,
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("the logs have no %s:\n%s", line, logs)
		}
	}
}
