package pinger

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pingpong/pingpong/handlers"
)

func TestRequestsAreWhatTheyClaim(t *testing.T) {
	reqs := Requests("abc123", 2, 3)
	want := []struct {
		label string
		kind  Kind
	}{
		{"ping-abc123-1", Ping}, {"ping-abc123-2", Ping},
		{"malformed-abc123-1", Malformed}, {"pang-abc123-2", NotPing}, {"malformed-abc123-3", Malformed},
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		if r.Label != want[i].label || r.Kind != want[i].kind {
			t.Errorf("request %d: %s %s, want %s %s", i, r.Label, r.Kind, want[i].label, want[i].kind)
		}
		// The service's own decoder says what each request is.
		req, err := handlers.Decode(r.Body, 0)
		switch r.Kind {
		case Ping, NotPing:
			wantMessage := map[Kind]string{Ping: "ping", NotPing: "pang"}[r.Kind]
			if err != nil || req.Key() != r.Label || req.Message != wantMessage || string(r.Key) != r.Label {
				t.Errorf("%s: decoded %+v, %v; key %q", r.Label, req, err, r.Key)
			}
		case Malformed:
			if err == nil || r.Key != nil || !json.Valid(r.Body) {
				t.Errorf("%s: a malformed request without a key, JSON for show to indent: %s decodes with %v", r.Label, r.Body, err)
			}
		}
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var s Summary
	for i := 1; i <= 200; i++ {
		s.RoundTrips = append(s.RoundTrips, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 100 * time.Millisecond, 99: 198 * time.Millisecond, 100: 200 * time.Millisecond, 0: time.Millisecond} {
		if got := s.Percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	one := Summary{RoundTrips: []time.Duration{7 * time.Millisecond}}
	if one.Percentile(50) != 7*time.Millisecond || one.Percentile(99) != 7*time.Millisecond {
		t.Errorf("one round trip: p50 %v p99 %v", one.Percentile(50), one.Percentile(99))
	}
	if (Summary{}).Percentile(50) != 0 {
		t.Error("no round trips")
	}
}

func TestSummaryIsOKOnlyWhenEveryRequestGotItsAnswer(t *testing.T) {
	answered := &Request{Label: "a", Answered: true, RoundTrip: time.Millisecond}
	wrong := &Request{Label: "b", Answered: true, Unexpected: "answered on .failed"}
	silent := &Request{Label: "c"}
	for _, tc := range []struct {
		reqs []*Request
		ok   bool
	}{
		{[]*Request{answered}, true},
		{[]*Request{answered, wrong}, false},
		{[]*Request{answered, silent}, false},
		{[]*Request{{Label: "d", SendErr: errTest}}, false},
	} {
		if got := Summarize(tc.reqs).OK(); got != tc.ok {
			t.Errorf("%+v: OK %v, want %v", Summarize(tc.reqs), got, tc.ok)
		}
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("broker away")

// TestSummaryNamesTheFirstFailuresOnly: a long run with nothing answering names ten requests and
// counts the rest, rather than printing a line for each; an interrupted run names none.
func TestSummaryNamesTheFirstFailuresOnly(t *testing.T) {
	reqs := Requests("abc123", 25, 0)
	reqs[24].SendErr = ErrNotSent
	var out strings.Builder
	WriteSummary(&out, Summarize(reqs), reqs, time.Second, false)
	want := "ping-abc123-25: not sent: stopped before it was sent\n"
	for i := 1; i <= 10; i++ {
		want += fmt.Sprintf("ping-abc123-%d: no answer within 1s\n", i)
	}
	want += "... and 14 more without an answer within 1s\nsent 24, answered 0, unanswered 24, unexpected 0, not sent 1\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	WriteSummary(&out, Summarize(reqs), reqs, time.Second, true)
	if want := "interrupted: sent 24, answered 0, unanswered 24, unexpected 0, not sent 1\n"; out.String() != want {
		t.Errorf("interrupted: got\n%s\nwant\n%s", out.String(), want)
	}
}
