package reliability_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pingpong/pingpong/app/servicetest"
)

// readyURL waits for the binary's Ready line and returns its HTTP address.
func readyURL(t *testing.T, p *servicetest.Process) string {
	t.Helper()
	ready := regexp.MustCompile(`"http":"(http://[^"]+)"[^\n]*"msg":"Ready: `)
	var url string
	waitFor(t, time.Minute, "the Ready line", func() bool {
		if m := ready.FindStringSubmatch(p.Output.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return url
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAnInstanceOutOfItsGroupIsNotReady: a watermill-kafka instance started into a group of
// franz-go members cannot join it (the broker refuses its protocol) and answers nothing: its
// /readyz fails and says why, pingpong_group_joined is 0, while the franz-go member is ready.
func TestAnInstanceOutOfItsGroupIsNotReady(t *testing.T) {
	cluster := servicetest.Cluster(t, partitions)
	brokers := cluster.ListenAddrs()
	franz := readyURL(t, startBinary(t, brokers))
	waitFor(t, time.Minute, "the franz-go member ready", func() bool {
		code, _ := get(t, franz+"/readyz")
		return code == http.StatusOK
	})
	sarama := readyURL(t, startBinaryWith(t, brokers, "KAFKA_TRANSPORT=watermill-kafka"))
	time.Sleep(5 * time.Second) // several join attempts
	code, body := get(t, sarama+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not in the consumer group") {
		t.Errorf("the instance that cannot join: /readyz %d %q", code, body)
	}
	if _, metrics := get(t, sarama+"/metrics"); !strings.Contains(metrics, "\npingpong_group_joined 0\n") {
		t.Error("the instance that cannot join does not show pingpong_group_joined 0")
	}
	if code, body := get(t, franz+"/readyz"); code != http.StatusOK {
		t.Errorf("the franz-go member: /readyz %d %q", code, body)
	}
}
