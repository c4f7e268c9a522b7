package middleware

import (
	"testing"
	"time"
)

func TestExemplarsAreLimitedToOneABucketASecond(t *testing.T) {
	l := newExemplarLimiter([]float64{.001, .01, .1})
	now := time.Unix(1000, 0)
	if !l.allow(.0005, now) || l.allow(.0008, now.Add(500*time.Millisecond)) {
		t.Error("the first observation of a bucket takes an exemplar, the next within a second none")
	}
	if !l.allow(.05, now.Add(500*time.Millisecond)) || !l.allow(5, now) {
		t.Error("each bucket (and +Inf) has its own second")
	}
	if !l.allow(.001, now.Add(time.Second)) {
		t.Error("a second later the bucket (le 0.001, bound included) takes one again")
	}
}
