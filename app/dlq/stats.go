package dlq

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

// Stats counts poison records.
type Stats struct {
	Records  int
	ByReason map[string]int
	// ByHour counts records by the hour (UTC) of their timestamp.
	ByHour         map[time.Time]int
	Oldest, Newest *Record
	// WithoutOriginal counts records that carry no original request: Legacy ones (from before
	// the poison headers) and Omitted ones (too large to carry).
	WithoutOriginal int
	Legacy          int
	Omitted         int
	// Replayed counts records of requests that had been replayed before they failed.
	Replayed int
}

// NewStats makes empty Stats.
func NewStats() *Stats {
	return &Stats{ByReason: map[string]int{}, ByHour: map[time.Time]int{}}
}

// Add counts r.
func (s *Stats) Add(r Record) {
	s.Records++
	code := r.ReasonCode
	if code == "" {
		code = NoReasonCode
	}
	s.ByReason[code]++
	s.ByHour[r.Timestamp.UTC().Truncate(time.Hour)]++
	if s.Oldest == nil || r.Timestamp.Before(s.Oldest.Timestamp) {
		s.Oldest = brief(r)
	}
	if s.Newest == nil || !r.Timestamp.Before(s.Newest.Timestamp) {
		s.Newest = brief(r)
	}
	if !r.HasOriginal {
		s.WithoutOriginal++
		switch {
		case r.Legacy():
			s.Legacy++
		case r.OriginalOmitted != "":
			s.Omitted++
		}
	}
	if r.ReplayCount > 0 {
		s.Replayed++
	}
}

// brief keeps what Stats shows of a record, not its bytes.
func brief(r Record) *Record {
	return &Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
}

// reasons lists the reason codes to show: every known one, then any other seen, sorted.
func (s *Stats) reasons() []string {
	codes := ReasonCodes()
	codes = codes[:len(codes)-1] // NoReasonCode only when seen
	for _, c := range slices.Sorted(maps.Keys(s.ByReason)) {
		if !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	return codes
}

// HourLayout is how Stats prints an hour.
const HourLayout = "2006-01-02T15:00Z"

// WriteText prints the counts for people.
func (s *Stats) WriteText(w io.Writer, topic string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: %d records\n", topic, s.Records)
	if s.Records > 0 {
		fmt.Fprintf(tw, "oldest\t%s\tat %s\n", FormatTime(s.Oldest.Timestamp), s.Oldest.Position())
		fmt.Fprintf(tw, "newest\t%s\tat %s\n", FormatTime(s.Newest.Timestamp), s.Newest.Position())
	}
	fmt.Fprintf(tw, "\nby reason\n")
	for _, code := range s.reasons() {
		fmt.Fprintf(tw, "  %s\t%d\n", Escape([]byte(code)), s.ByReason[code])
	}
	if s.Records > 0 {
		fmt.Fprintf(tw, "\nby hour (UTC)\n")
		for _, hour := range slices.SortedFunc(maps.Keys(s.ByHour), time.Time.Compare) {
			fmt.Fprintf(tw, "  %s\t%d\n", hour.Format(HourLayout), s.ByHour[hour])
		}
	}
	fmt.Fprintf(tw, "\nwithout the original request\t%d\n", s.WithoutOriginal)
	fmt.Fprintf(tw, "  from before the poison headers\t%d\n", s.Legacy)
	fmt.Fprintf(tw, "  omitted (too large)\t%d\n", s.Omitted)
	fmt.Fprintf(tw, "replayed before they failed\t%d\n", s.Replayed)
	return tw.Flush()
}

// JSONStats is Stats as `--output json` prints it.
type JSONStats struct {
	Topic           string         `json:"topic"`
	Records         int            `json:"records"`
	ByReason        map[string]int `json:"by_reason"`
	ByHour          map[string]int `json:"by_hour"`
	Oldest          *JSONPosition  `json:"oldest,omitempty"`
	Newest          *JSONPosition  `json:"newest,omitempty"`
	WithoutOriginal int            `json:"without_original"`
	Legacy          int            `json:"legacy"`
	Omitted         int            `json:"omitted"`
	Replayed        int            `json:"replayed"`
}

// JSONPosition is a record's place and time.
type JSONPosition struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp string `json:"timestamp"`
}

// JSON turns the counts into their JSON form.
func (s *Stats) JSON(topic string) JSONStats {
	j := JSONStats{
		Topic: topic, Records: s.Records, ByReason: map[string]int{}, ByHour: map[string]int{},
		WithoutOriginal: s.WithoutOriginal, Legacy: s.Legacy, Omitted: s.Omitted, Replayed: s.Replayed,
	}
	for _, code := range s.reasons() {
		j.ByReason[code] = s.ByReason[code]
	}
	for hour, n := range s.ByHour {
		j.ByHour[hour.Format(HourLayout)] = n
	}
	position := func(r *Record) *JSONPosition {
		if r == nil {
			return nil
		}
		return &JSONPosition{Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.Format(time.RFC3339Nano)}
	}
	j.Oldest, j.Newest = position(s.Oldest), position(s.Newest)
	return j
}
