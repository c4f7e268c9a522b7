package handlers

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// The original service decoded requests with Python's json.loads on bytes, which reads UTF-8,
// UTF-16 and UTF-32, with or without a byte order mark (RFC 8259 §8.1; Python's
// json.detect_encoding). requestText does the same detection and turns the request into UTF-8,
// the only encoding the scanner reads.

var (
	bomUTF32BE = []byte{0x00, 0x00, 0xFE, 0xFF}
	bomUTF32LE = []byte{0xFF, 0xFE, 0x00, 0x00}
	bomUTF16BE = []byte{0xFE, 0xFF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
)

// requestText returns the request as UTF-8 without a byte order mark, or the reason it is not
// text in any of the encodings the original read. The detection is json.detect_encoding's: a
// BOM decides, else the zero bytes among the first four (JSON text starts with ASCII).
func requestText(b []byte) ([]byte, string) {
	var text []byte
	var ok bool
	encoding := "UTF-8"
	switch {
	case bytes.HasPrefix(b, bomUTF32BE):
		text, ok, encoding = fromUTF32(b[4:], binary.BigEndian, "UTF-32BE (by its byte order mark)")
	case bytes.HasPrefix(b, bomUTF32LE): // before UTF-16's, of which it is an extension
		text, ok, encoding = fromUTF32(b[4:], binary.LittleEndian, "UTF-32LE (by its byte order mark)")
	case bytes.HasPrefix(b, bomUTF16BE):
		text, ok, encoding = fromUTF16(b[2:], binary.BigEndian, "UTF-16BE (by its byte order mark)")
	case bytes.HasPrefix(b, bomUTF16LE):
		text, ok, encoding = fromUTF16(b[2:], binary.LittleEndian, "UTF-16LE (by its byte order mark)")
	case bytes.HasPrefix(b, bomUTF8):
		text, ok = b[3:], utf8.Valid(b[3:])
	case len(b) >= 4 && b[0] == 0 && b[1] == 0:
		text, ok, encoding = fromUTF32(b, binary.BigEndian, "UTF-32BE (by its zero bytes)")
	case len(b) >= 4 && b[0] == 0:
		text, ok, encoding = fromUTF16(b, binary.BigEndian, "UTF-16BE (by its zero bytes)")
	case len(b) >= 4 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		text, ok, encoding = fromUTF32(b, binary.LittleEndian, "UTF-32LE (by its zero bytes)")
	case len(b) >= 4 && b[1] == 0:
		text, ok, encoding = fromUTF16(b, binary.LittleEndian, "UTF-16LE (by its zero bytes)")
	case len(b) == 2 && b[0] == 0:
		text, ok, encoding = fromUTF16(b, binary.BigEndian, "UTF-16BE (by its zero bytes)")
	case len(b) == 2 && b[1] == 0:
		text, ok, encoding = fromUTF16(b, binary.LittleEndian, "UTF-16LE (by its zero bytes)")
	default:
		text, ok = b, utf8.Valid(b)
	}
	switch {
	case !ok && encoding == "UTF-8":
		return nil, "the request is not valid UTF-8"
	case !ok:
		// Most often binary data that happens to start like UTF-16 or UTF-32: say both.
		return nil, "the request is not valid UTF-8, nor " + encoding
	}
	return text, ""
}

// fromUTF16 decodes strictly: an odd length or a lone surrogate is not text. (Python decoded
// with errors="surrogatepass", but a lone surrogate cannot be written in UTF-8, so an id holding
// one could not be echoed.)
func fromUTF16(b []byte, order binary.ByteOrder, name string) ([]byte, bool, string) {
	text, ok := utf16Text(b, order)
	return text, ok, name
}

func utf16Text(b []byte, order binary.ByteOrder) ([]byte, bool) {
	if len(b)%2 != 0 {
		return nil, false
	}
	text := make([]byte, 0, len(b))
	for i := 0; i < len(b); i += 2 {
		u := rune(order.Uint16(b[i:]))
		if utf16.IsSurrogate(u) {
			if u >= 0xDC00 || i+4 > len(b) {
				return nil, false
			}
			r := utf16.DecodeRune(u, rune(order.Uint16(b[i+2:])))
			if r == utf8.RuneError {
				return nil, false
			}
			u = r
			i += 2
		}
		text = utf8.AppendRune(text, u)
	}
	return text, true
}

func fromUTF32(b []byte, order binary.ByteOrder, name string) ([]byte, bool, string) {
	text, ok := utf32Text(b, order)
	return text, ok, name
}

func utf32Text(b []byte, order binary.ByteOrder) ([]byte, bool) {
	if len(b)%4 != 0 {
		return nil, false
	}
	text := make([]byte, 0, len(b)/2)
	for i := 0; i < len(b); i += 4 {
		r := order.Uint32(b[i:])
		if r > utf8.MaxRune || utf16.IsSurrogate(rune(r)) {
			return nil, false
		}
		text = utf8.AppendRune(text, rune(r))
	}
	return text, true
}
