package dlq

import (
	"strings"
	"testing"
	"time"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcödé ok":      "plain text, ünïcödé ok",
		"line\nbreak\ttab\rreturn":    `line\nbreak\ttab\rreturn`,
		"\x1b[31mred\x1b[0m":          `\x1b[31mred\x1b[0m`,
		"bell\x07 del\x7f nul\x00":    `bell\x07 del\x7f nul\x00`,
		"c1 \u009b csi":               `c1 \u009b csi`,
		"bidi \u202egnip\u202c":       `bidi \u202egnip\u202c`,
		"not utf-8 \xff\xfe end":      `not utf-8 \xff\xfe end`,
		"truncated rune \xe2\x82 end": `truncated rune \xe2\x82 end`,
	} {
		if got := Escape([]byte(in)); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("abcdef", 4); got != "abc…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate("ééé", 3); got != "ééé" {
		t.Errorf("Truncate counts characters, not bytes: %q", got)
	}
}

func TestTableCutsAndPads(t *testing.T) {
	table := Table{{Title: "A", Width: 3}, {Title: "B", Width: 5, CutLeft: true}, {Title: "C"}}
	var sb strings.Builder
	if err := table.Row(&sb, "abcdef", "topic:1:2", "rest, as long as it is"); err != nil {
		t.Fatal(err)
	}
	if err := table.Row(&sb, "", "x", ""); err != nil {
		t.Fatal(err)
	}
	want := "ab…  …:1:2  rest, as long as it is\n-    x      -\n"
	if sb.String() != want {
		t.Errorf("table\n%q\nwant\n%q", sb.String(), want)
	}
}

func TestParsePosition(t *testing.T) {
	if p, o, err := ParsePosition("3:1834"); err != nil || p != 3 || o != 1834 {
		t.Errorf("3:1834 = %d %d %v", p, o, err)
	}
	for _, bad := range []string{"", "3", "3:", ":4", "-1:4", "1:-4", "a:b", "1:2:3"} {
		if _, _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 14, 30, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2h":                        now.Add(-2 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"2026-04-30T10:00:00Z":      time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC),
		"2026-04-30T12:00:00+02:00": time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC),
		"2026-04-30T10:00":          time.Date(2026, 4, 30, 10, 0, 0, 0, time.UTC),
		"2026-04-30":                time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-2h", "2026-13-01", ""} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
