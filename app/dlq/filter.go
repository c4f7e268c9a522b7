package dlq

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pingpong/pingpong/poison"
)

// Filter selects records by what they say. Every field set must match; an empty Filter matches
// every record.
type Filter struct {
	// ReasonCodes matches a record whose pingpong_reason_code is any of them. NoReasonCode
	// stands for records without one (from before the headers existed).
	ReasonCodes []string
	// ReasonContains matches a record whose reason_poisoned contains it, ignoring case.
	ReasonContains string
	// TransactionID matches a record whose transaction_id header is exactly it.
	TransactionID string
}

// NoReasonCode selects, in Filter.ReasonCodes, the records that have no reason code.
const NoReasonCode = "none"

// ReasonCodes are the values Filter.ReasonCodes accepts: the service's reason codes and
// NoReasonCode.
func ReasonCodes() []string {
	codes := make([]string, 0, len(poison.ReasonCodes)+1)
	for _, c := range poison.ReasonCodes {
		codes = append(codes, string(c))
	}
	return append(codes, NoReasonCode)
}

// Validate checks the reason codes, so that a typo is an error rather than an empty result.
func (f Filter) Validate() error {
	known := ReasonCodes()
	for _, c := range f.ReasonCodes {
		if !slices.Contains(known, c) {
			return fmt.Errorf("unknown reason code %q: use one of %s (or --reason-contains to match the reason's text)", c, strings.Join(known, ", "))
		}
	}
	return nil
}

// Match tells whether r passes the filter.
func (f Filter) Match(r Record) bool {
	if len(f.ReasonCodes) > 0 {
		code := r.ReasonCode
		if code == "" {
			code = NoReasonCode
		}
		if !slices.Contains(f.ReasonCodes, code) {
			return false
		}
	}
	if f.ReasonContains != "" && !strings.Contains(strings.ToLower(r.Reason), strings.ToLower(f.ReasonContains)) {
		return false
	}
	if f.TransactionID != "" && r.TransactionID != f.TransactionID {
		return false
	}
	return true
}

// ParsePosition reads "<partition>:<offset>".
func ParsePosition(s string) (partition int32, offset int64, err error) {
	p, o, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not <partition>:<offset>, e.g. 0:17", s)
	}
	pn, err := strconv.ParseInt(p, 10, 32)
	if err != nil || pn < 0 {
		return 0, 0, fmt.Errorf("%q is not <partition>:<offset>: the partition %q is not a number from 0", s, p)
	}
	on, err := strconv.ParseInt(o, 10, 64)
	if err != nil || on < 0 {
		return 0, 0, fmt.Errorf("%q is not <partition>:<offset>: the offset %q is not a number from 0", s, o)
	}
	return int32(pn), on, nil
}

// ParseTime reads a point in time: RFC 3339 (2026-05-01T14:00:00Z, or with an offset), a date
// (2026-05-01, midnight UTC), or a duration before now (90m, 2h, 36h).
func ParseTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration counts back from now and must not be negative", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2026-05-01T14:00:00Z, 2026-05-01) nor a duration before now (90m, 2h)", s)
}
