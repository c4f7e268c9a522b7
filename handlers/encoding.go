package handlers

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
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

// The decoders of golang.org/x/text. The byte order mark, if any, is cut off before them.
var (
	utf16BE = unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM)
	utf16LE = unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM)
	utf32BE = utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM)
	utf32LE = utf32.UTF32(utf32.LittleEndian, utf32.IgnoreBOM)
)

// fromUTF16 decodes strictly: an odd length or a lone surrogate is not text. (Python decoded
// with errors="surrogatepass", but a lone surrogate cannot be written in UTF-8, so an id holding
// one could not be echoed.)
func fromUTF16(b []byte, order binary.ByteOrder, name string) ([]byte, bool, string) {
	enc := utf16LE
	if order == binary.BigEndian {
		enc = utf16BE
	}
	text, ok := decodeStrictly(b, enc)
	return text, ok, name
}

// fromUTF32 decodes strictly: a length not a multiple of four, a surrogate or a value past
// U+10FFFF is not text.
func fromUTF32(b []byte, order binary.ByteOrder, name string) ([]byte, bool, string) {
	enc := utf32LE
	if order == binary.BigEndian {
		enc = utf32BE
	}
	text, ok := decodeStrictly(b, enc)
	return text, ok, name
}

// decodeStrictly decodes b to UTF-8. x/text's decoders replace what they cannot decode with
// U+FFFD and go on, where the original refused the request (Python's UnicodeDecodeError): a
// decoding with U+FFFD in it is kept only if it encodes back to b, that is if b held U+FFFD
// itself. Valid text without U+FFFD, all but every request, is decoded once.
func decodeStrictly(b []byte, enc encoding.Encoding) ([]byte, bool) {
	text, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return nil, false
	}
	if bytes.Contains(text, replacementChar) {
		back, err := enc.NewEncoder().Bytes(text)
		if err != nil || !bytes.Equal(back, b) {
			return nil, false
		}
	}
	return text, true
}

var replacementChar = []byte(string(utf8.RuneError))
