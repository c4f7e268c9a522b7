package handlers

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The vectors below were generated and checked with the original's Python 3.11 (json.loads on
// bytes, default settings): each encoded request decodes there to the same value, and each
// verdict is Python's. The suite does not run Python; regenerate the vectors with it when
// changing the decoder.

// One request (with a non-ASCII id, an astral one included) in every encoding Python's
// json.detect_encoding reads.
var pythonEncodings = []struct{ name, hex string }{
	{"utf-8", "7b227472616e73616374696f6e2d6964223a2022c3b12df09f8f93222c20227061796c6f6164223a207b226d657373616765223a202270696e67227d7d"},
	{"utf-8 BOM", "efbbbf7b227472616e73616374696f6e2d6964223a2022c3b12df09f8f93222c20227061796c6f6164223a207b226d657373616765223a202270696e67227d7d"},
	{"utf-16-le", "7b0022007400720061006e00730061006300740069006f006e002d006900640022003a0020002200f1002d003cd8d3df22002c00200022007000610079006c006f006100640022003a0020007b0022006d0065007300730061006700650022003a0020002200700069006e00670022007d007d00"},
	{"utf-16-be", "007b0022007400720061006e00730061006300740069006f006e002d006900640022003a0020002200f1002dd83cdfd30022002c00200022007000610079006c006f006100640022003a0020007b0022006d0065007300730061006700650022003a0020002200700069006e00670022007d007d"},
	{"utf-16-le BOM", "fffe7b0022007400720061006e00730061006300740069006f006e002d006900640022003a0020002200f1002d003cd8d3df22002c00200022007000610079006c006f006100640022003a0020007b0022006d0065007300730061006700650022003a0020002200700069006e00670022007d007d00"},
	{"utf-16-be BOM", "feff007b0022007400720061006e00730061006300740069006f006e002d006900640022003a0020002200f1002dd83cdfd30022002c00200022007000610079006c006f006100640022003a0020007b0022006d0065007300730061006700650022003a0020002200700069006e00670022007d007d"},
	{"utf-32-le", "7b000000220000007400000072000000610000006e00000073000000610000006300000074000000690000006f0000006e0000002d0000006900000064000000220000003a0000002000000022000000f10000002d000000d3f30100220000002c00000020000000220000007000000061000000790000006c0000006f0000006100000064000000220000003a000000200000007b000000220000006d000000650000007300000073000000610000006700000065000000220000003a000000200000002200000070000000690000006e00000067000000220000007d0000007d000000"},
	{"utf-32-be", "0000007b000000220000007400000072000000610000006e00000073000000610000006300000074000000690000006f0000006e0000002d0000006900000064000000220000003a0000002000000022000000f10000002d0001f3d3000000220000002c00000020000000220000007000000061000000790000006c0000006f0000006100000064000000220000003a000000200000007b000000220000006d000000650000007300000073000000610000006700000065000000220000003a000000200000002200000070000000690000006e00000067000000220000007d0000007d"},
	{"utf-32-le BOM", "fffe00007b000000220000007400000072000000610000006e00000073000000610000006300000074000000690000006f0000006e0000002d0000006900000064000000220000003a0000002000000022000000f10000002d000000d3f30100220000002c00000020000000220000007000000061000000790000006c0000006f0000006100000064000000220000003a000000200000007b000000220000006d000000650000007300000073000000610000006700000065000000220000003a000000200000002200000070000000690000006e00000067000000220000007d0000007d000000"},
	{"utf-32-be BOM", "0000feff0000007b000000220000007400000072000000610000006e00000073000000610000006300000074000000690000006f0000006e0000002d0000006900000064000000220000003a0000002000000022000000f10000002d0001f3d3000000220000002c00000020000000220000007000000061000000790000006c0000006f0000006100000064000000220000003a000000200000007b000000220000006d000000650000007300000073000000610000006700000065000000220000003a000000200000002200000070000000690000006e00000067000000220000007d0000007d"},
}

func TestRequestTextMatchesPython(t *testing.T) {
	for _, tc := range pythonEncodings {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := hex.DecodeString(tc.hex)
			req, err := Decode(body, 0)
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if string(req.TransactionID) != `"ñ-🏓"` || req.Key() != "ñ-🏓" || req.Message != "ping" {
				t.Fatalf("read %s %q %q", req.TransactionID, req.Key(), req.Message)
			}
		})
	}
	// Two-byte documents: Python detects UTF-16 by the zero byte too.
	for _, body := range []string{"1\x00", "\x001"} {
		if text, notText := requestText([]byte(body)); notText != "" || string(text) != "1" {
			t.Errorf("requestText(%q) = %q, %q; Python reads 1", body, text, notText)
		}
	}
	// U+FFFD sent as such is text in every encoding (x/text's decoders also write it for what
	// they cannot decode, which must not be taken for it).
	for _, body := range []string{"\xff\xfe\xfd\xff", "\xfe\xff\xff\xfd", "\xff\xfe\x00\x00\xfd\xff\x00\x00", "\x00\x00\xfe\xff\x00\x00\xff\xfd"} {
		if text, notText := requestText([]byte(body)); notText != "" || string(text) != "\ufffd" {
			t.Errorf("requestText(%q) = %q, %q; Python reads U+FFFD", body, text, notText)
		}
	}
	// Python raises UnicodeDecodeError on these: an odd UTF-16 length, a UTF-32 length not a
	// multiple of four. A lone surrogate is refused here, where Python passed it through.
	for _, body := range []string{"\xff\xfe{\x00}", "{\x00\x00\x00}\x00\x00", "\xff\xfe\x00\xd8", "\x00\x00\x00{\x00\x11\x00\x00"} {
		if _, notText := requestText([]byte(body)); notText == "" {
			t.Errorf("requestText(%q) reads text; Python refuses it", body)
		}
	}
}

// TestScannerMatchesPython holds the scanner to Python's verdicts where they differ from
// encoding/json's (FuzzScannerMatchesEncodingJSON holds it to encoding/json elsewhere).
func TestScannerMatchesPython(t *testing.T) {
	nested := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	nestedObjects := func(n int) string { return strings.Repeat(`{"a": `, n) + "1" + strings.Repeat("}", n) }
	digits := func(n int) string { return strings.Repeat("7", n) }
	for _, tc := range []struct {
		name, doc string
		valid     bool
	}{
		{"NaN", `{"a": NaN}`, true},
		{"Infinity", `[Infinity, -Infinity]`, true},
		{"-NaN", `[-NaN]`, false},
		{"nan", `[nan]`, false},
		{"infinity", `[infinity]`, false},
		{"+Infinity", `[+Infinity]`, false},
		{"Inf", `[Inf]`, false},
		{"990 arrays", nested(990), true},
		// Python's limit moves with its caller's depth: 995 levels from a script's top level, one
		// less for each frame deeper; 990 is json.loads called four frames deep, as a consumer
		// loop's handler does.
		{"991 arrays", nested(991), false},
		{"990 objects", nestedObjects(990), true},
		{"991 objects", nestedObjects(991), false},
		{"4,300-digit integer", "[" + digits(4300) + "]", true},
		{"4,300-digit negative integer", "-" + digits(4300), true},
		{"4,301-digit integer", "[" + digits(4301) + "]", false},
		{"4,301-digit negative integer", "-" + digits(4301), false},
		{"4,301 digits and a fraction", digits(4301) + ".5", true},
		{"4,301 digits and an exponent", digits(4301) + "e1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := fields([]byte(tc.doc)); (err == nil) != tc.valid {
				t.Fatalf("valid=%v (%v), Python says %v", err == nil, err, tc.valid)
			}
		})
	}
}
