package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/poison"
)

// TimeLayout is how the tools print times: UTC, to the millisecond, always the same width.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime prints t in TimeLayout, or "-" for the zero time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(TimeLayout)
}

// Escape makes untrusted bytes safe to print on one line of a terminal: control and format
// characters (newlines, tabs, escape sequences, bidirectional overrides) and bytes that are not
// UTF-8 become Go-style escapes.
func Escape(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&sb, `\x%02x`, b[0])
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&sb, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// Truncate shortens s to at most n characters, marking a cut with "…".
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}

// Preview is a short, escaped view of the original request, or says why there is none.
func (r Record) Preview(n int) string {
	switch {
	case r.HasOriginal && len(r.Original) == 0:
		return "(empty)"
	case r.HasOriginal:
		return Truncate(Escape(r.Original), n)
	case r.OriginalOmitted != "":
		return "(omitted: too large)"
	case r.Legacy():
		return "(none: from before the poison headers)"
	}
	return "(none)"
}

// Column is a column of a fixed-width table: values longer than Width are cut, shorter ones
// padded, so that rows can be printed one at a time (as --follow does) and still line up. Width
// 0 means no limit (the last column).
type Column struct {
	Title string
	Width int
	// CutLeft cuts a long value at its start rather than its end, to keep what ends it (the
	// partition and offset of a source).
	CutLeft bool
}

// Table is a fixed-width table.
type Table []Column

// Header prints the column titles.
func (t Table) Header(w io.Writer) error {
	titles := make([]string, len(t))
	for i, c := range t {
		titles[i] = c.Title
	}
	return t.Row(w, titles...)
}

// Row prints one row. The cells must be escaped already.
func (t Table) Row(w io.Writer, cells ...string) error {
	var sb strings.Builder
	for i, c := range t {
		cell := dash(cells[i])
		if c.Width == 0 || i == len(t)-1 {
			sb.WriteString(cell)
			break
		}
		n := utf8.RuneCountInString(cell)
		switch {
		case n > c.Width && c.CutLeft:
			runes := []rune(cell)
			cell = "…" + string(runes[n-c.Width+1:])
		case n > c.Width:
			cell = Truncate(cell, c.Width)
		}
		sb.WriteString(cell)
		sb.WriteString(strings.Repeat(" ", max(c.Width-utf8.RuneCountInString(cell), 0)+2))
	}
	sb.WriteString("\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

// ListTable is the table of `pingpong dlq list`.
var ListTable = Table{
	{Title: "TIME", Width: len(TimeLayout)},
	{Title: "AT", Width: 9},
	{Title: "TRANSACTION ID", Width: 20},
	{Title: "CODE", Width: len(poison.ReasonRetriesExhausted)},
	{Title: "ATTEMPTS", Width: 8},
	{Title: "REPLAYS", Width: 7},
	{Title: "SOURCE", Width: 32, CutLeft: true},
	{Title: "REASON", Width: 32},
	{Title: "ORIGINAL"},
}

// PreviewLength is how much of the original request the list shows.
const PreviewLength = 40

// ListRow is a record's row in ListTable.
func ListRow(r Record) []string {
	return []string{
		FormatTime(r.Timestamp),
		r.Position(),
		Escape([]byte(r.TransactionID)),
		Escape([]byte(r.ReasonCode)),
		countOrEmpty(r.Attempts),
		strconv.Itoa(r.ReplayCount),
		Escape([]byte(r.Source())),
		Escape([]byte(r.Reason)),
		r.Preview(PreviewLength),
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func countOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// JSONRecord is a record as `--output json` prints it, one object a line. Byte fields are
// strings when they are valid UTF-8, else base64 with their *_encoding field saying so.
type JSONRecord struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp string `json:"timestamp"`
	Key       string `json:"key,omitempty"`
	// KeyEncoding is "base64" when the key is not valid UTF-8; absent otherwise.
	KeyEncoding    string `json:"key_encoding,omitempty"`
	Answer         string `json:"answer"`
	AnswerEncoding string `json:"answer_encoding,omitempty"`

	ReasonCode    string `json:"reason_code,omitempty"`
	Reason        string `json:"reason,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`

	SourceTopic     string `json:"source_topic,omitempty"`
	SourcePartition *int32 `json:"source_partition,omitempty"`
	SourceOffset    *int64 `json:"source_offset,omitempty"`
	SourceTimestamp string `json:"source_timestamp,omitempty"`
	Handler         string `json:"handler,omitempty"`
	Subscriber      string `json:"subscriber,omitempty"`
	Attempts        int    `json:"attempts,omitempty"`
	FailedAt        string `json:"failed_at,omitempty"`

	// Original is the request's bytes; OriginalEncoding is "utf-8" or "base64" whenever
	// Original is present (absent: the record carries no request, see OriginalOmitted and
	// Legacy).
	Original            *string `json:"original,omitempty"`
	OriginalEncoding    string  `json:"original_encoding,omitempty"`
	OriginalKey         *string `json:"original_key,omitempty"`
	OriginalKeyEncoding string  `json:"original_key_encoding,omitempty"`
	OriginalOmitted     string  `json:"original_omitted,omitempty"`
	// Legacy marks a record from before the poison headers existed.
	Legacy bool `json:"legacy,omitempty"`

	ReplayCount  int    `json:"replay_count"`
	ReplayedFrom string `json:"replayed_from,omitempty"`

	// Headers are all the record's headers as read, the decoded ones above included; a value
	// that is not valid UTF-8 is base64 and its name is listed in Base64Headers.
	Headers       map[string]string `json:"headers"`
	Base64Headers []string          `json:"base64_headers,omitempty"`
}

// JSON turns a record into its JSON form.
func (r Record) JSON() JSONRecord {
	j := JSONRecord{
		Topic:           r.Topic,
		Partition:       r.Partition,
		Offset:          r.Offset,
		Timestamp:       r.Timestamp.UTC().Format(time.RFC3339Nano),
		ReasonCode:      r.ReasonCode,
		Reason:          r.Reason,
		TransactionID:   r.TransactionID,
		CorrelationID:   r.CorrelationID,
		SourceTopic:     r.SourceTopic,
		Handler:         r.Handler,
		Subscriber:      r.Subscriber,
		Attempts:        r.Attempts,
		OriginalOmitted: r.OriginalOmitted,
		Legacy:          r.Legacy(),
		ReplayCount:     r.ReplayCount,
		ReplayedFrom:    r.ReplayedFrom,
		Headers:         map[string]string{},
	}
	if r.Key != nil {
		j.Key, j.KeyEncoding = encode(r.Key)
		if j.KeyEncoding == "utf-8" {
			j.KeyEncoding = ""
		}
	}
	j.Answer, j.AnswerEncoding = encode(r.Answer)
	if j.AnswerEncoding == "utf-8" {
		j.AnswerEncoding = ""
	}
	if r.SourcePartition >= 0 {
		j.SourcePartition = &r.SourcePartition
	}
	if r.SourceOffset >= 0 {
		j.SourceOffset = &r.SourceOffset
	}
	if !r.SourceTimestamp.IsZero() {
		j.SourceTimestamp = r.SourceTimestamp.Format(time.RFC3339Nano)
	}
	if !r.FailedAt.IsZero() {
		j.FailedAt = r.FailedAt.Format(time.RFC3339Nano)
	}
	if r.HasOriginal {
		s, enc := encode(r.Original)
		j.Original, j.OriginalEncoding = &s, enc
	}
	if r.HasOriginalKey {
		s, enc := encode(r.OriginalKey)
		j.OriginalKey = &s
		if enc != "utf-8" {
			j.OriginalKeyEncoding = enc
		}
	}
	for _, h := range r.Headers {
		v, enc := encode(h.Value)
		j.Headers[h.Key] = v
		if enc != "utf-8" {
			j.Base64Headers = append(j.Base64Headers, h.Key)
		}
	}
	return j
}

func encode(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), "utf-8"
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

// WriteJSONLine prints r as one line of JSON.
func WriteJSONLine(w io.Writer, r Record) error {
	line, err := json.Marshal(r.JSON())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

// WriteDetail prints one record in full for people: every field, the answer and the original
// request pretty-printed (indented when they are JSON), then every header.
func WriteDetail(w io.Writer, r Record) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s\t%s\n", name, dash(value)) }
	field("record", r.Address())
	field("time", FormatTime(r.Timestamp))
	field("key", Escape(r.Key))
	if r.Legacy() {
		field("poison headers", "none: this record is from before the poison headers existed; it cannot be replayed")
	}
	field("reason code", Escape([]byte(r.ReasonCode)))
	field("reason", Escape([]byte(r.Reason)))
	field("transaction id", Escape([]byte(r.TransactionID)))
	field("correlation id", Escape([]byte(r.CorrelationID)))
	source := Escape([]byte(r.Source()))
	if !r.SourceTimestamp.IsZero() {
		source += " (produced " + FormatTime(r.SourceTimestamp) + ")"
	}
	field("source", source)
	field("handler", Escape([]byte(r.Handler)))
	field("attempts", countOrEmpty(r.Attempts))
	field("failed at", FormatTime(r.FailedAt))
	replays := strconv.Itoa(r.ReplayCount)
	if r.ReplayedFrom != "" {
		replays += ", last replayed from " + Escape([]byte(r.ReplayedFrom))
	}
	field("replays", replays)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nanswer (%d bytes):\n%s\n", len(r.Answer), pretty(r.Answer))
	switch {
	case r.HasOriginal:
		key := "no key"
		if r.HasOriginalKey {
			key = "key " + strconv.Quote(Escape(r.OriginalKey))
		}
		fmt.Fprintf(w, "\noriginal request (%d bytes, %s):\n%s\n", len(r.Original), key, pretty(r.Original))
	case r.OriginalOmitted != "":
		fmt.Fprintf(w, "\noriginal request: omitted: %s\n", Escape([]byte(r.OriginalOmitted)))
	default:
		fmt.Fprintf(w, "\noriginal request: none\n")
	}

	// Sorted by name: the service's headers come from a map, in no particular order.
	headers := slices.SortedStableFunc(slices.Values(r.Headers), func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
	fmt.Fprintf(w, "\nheaders (%d):\n", len(headers))
	tw = tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, h := range headers {
		value := Escape(h.Value)
		if h.Key == poison.HeaderOriginal {
			value = fmt.Sprintf("(%d bytes: the original request above)", len(h.Value))
		}
		fmt.Fprintf(tw, "  %s:\t%s\n", Escape([]byte(h.Key)), value)
	}
	return tw.Flush()
}

// pretty shows bytes for people: JSON indented, other text escaped line by line, anything
// else as a hex dump.
func pretty(b []byte) string {
	switch {
	case len(b) == 0:
		return "  (empty)"
	case json.Valid(b):
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err == nil {
			// JSON strings hold no raw newlines, so each line can be escaped on its own: that
			// leaves the indentation and catches DEL, C1 controls and bidirectional overrides,
			// which JSON allows raw.
			lines := strings.Split(out.String(), "\n")
			for i, l := range lines {
				lines[i] = "  " + Escape([]byte(l))
			}
			return strings.Join(lines, "\n")
		}
	case utf8.Valid(b):
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			lines[i] = "  " + Escape([]byte(l))
		}
		return strings.Join(lines, "\n")
	}
	return "  (not UTF-8; hex dump)\n" + strings.TrimRight(indent(hex.Dump(b)), "\n ")
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}
