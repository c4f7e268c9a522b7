package handlers

import (
	"encoding/json"
	"fmt"
)

// The original service's Python json.loads rejected documents nested deeper than its recursion
// limit (about 990 levels, the rest of the 1,000 frames being the service's own) and integers
// longer than 4,300 digits (Python's int_max_str_digits). The same documents are malformed here.
const (
	maxDepth         = 990
	maxIntegerDigits = 4300
)

// scanner validates JSON as the original's Python json.loads read it (RFC 8259, plus NaN,
// Infinity and -Infinity, within the limits above) in one pass, without building
// values: the service needs three fields of each request, and decoding the whole document into
// maps cost a quarter of its CPU per message. FuzzScannerMatchesEncodingJSON holds it to
// encoding/json's verdicts where Python's agree, TestScannerMatchesPython to Python's elsewhere.
type scanner struct {
	b     []byte
	i     int
	depth int
}

type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.offset) }

func (s *scanner) fail(msg string) error { return &syntaxError{msg: msg, offset: s.i} }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// member is a key and value of an object, as ranges of the document.
type member struct {
	key        []byte // the raw key, quotes included
	keyEscaped bool
	value      []byte // the raw value
}

// value skips one value, validating it, and returns its raw bytes.
func (s *scanner) value() ([]byte, error) {
	s.ws()
	if s.i >= len(s.b) {
		return nil, s.fail("unexpected end of input")
	}
	start := s.i
	var err error
	switch c := s.b[s.i]; {
	case c == '{':
		err = s.object(nil)
	case c == '[':
		err = s.array()
	case c == '"':
		_, err = s.string()
	case c == '-' && s.i+1 < len(s.b) && s.b[s.i+1] == 'I':
		s.i++
		err = s.literal("Infinity")
	case c == '-' || ('0' <= c && c <= '9'):
		err = s.number()
	case c == 'N':
		err = s.literal("NaN")
	case c == 'I':
		err = s.literal("Infinity")
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	default:
		err = s.fail(fmt.Sprintf("invalid character %q looking for a value", c))
	}
	return s.b[start:s.i], err
}

func (s *scanner) nest() error {
	s.depth++
	if s.depth > maxDepth {
		return s.fail("exceeded max depth")
	}
	return nil
}

// object skips an object, calling each for every member (nil to only validate).
func (s *scanner) object(each func(member)) error {
	if err := s.nest(); err != nil {
		return err
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.fail("expected a string key")
		}
		keyStart := s.i
		escaped, err := s.string()
		if err != nil {
			return err
		}
		key := s.b[keyStart:s.i]
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail("expected ':' after an object key")
		}
		s.i++
		value, err := s.value()
		if err != nil {
			return err
		}
		if each != nil {
			each(member{key: key, keyEscaped: escaped, value: value})
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input in an object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or '}' in an object")
		}
	}
}

func (s *scanner) array() error {
	if err := s.nest(); err != nil {
		return err
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if _, err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.fail("unexpected end of input in an array")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or ']' in an array")
		}
	}
}

// string skips a string; escaped tells whether it holds escapes. The document is valid UTF-8
// already (Decode checks it first), so only control characters and escapes need a look.
func (s *scanner) string() (escaped bool, err error) {
	s.i++ // "
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c < 0x20:
			return escaped, s.fail("invalid control character in a string")
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return escaped, s.fail("unexpected end of input in a string")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for range 4 {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return escaped, s.fail("invalid \\u escape in a string")
					}
					s.i++
				}
			default:
				return escaped, s.fail("invalid escape in a string")
			}
		default:
			s.i++
		}
	}
	return escaped, s.fail("unexpected end of input in a string")
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	integerDigits := 1
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	default:
		if integerDigits = s.digits(); integerDigits == 0 {
			return s.fail("invalid number")
		}
	}
	if integerDigits > maxIntegerDigits && (s.i >= len(s.b) || s.b[s.i] != '.' && s.b[s.i] != 'e' && s.b[s.i] != 'E') {
		// Python reads an integer exactly, and refuses to above 4,300 digits; a fraction or an
		// exponent makes it a float, which has no such limit.
		return s.fail(fmt.Sprintf("an integer of %d digits, above the original's maximum of %d", integerDigits, maxIntegerDigits))
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return s.fail("invalid number: no digit after the decimal point")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return s.fail("invalid number: no digit in the exponent")
		}
	}
	return nil
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// keyIs tells whether a member's key is name, comparing the decoded key when it has escapes.
func (m member) keyIs(name string) bool {
	if !m.keyEscaped {
		return len(m.key) == len(name)+2 && string(m.key[1:len(m.key)-1]) == name
	}
	var key string
	return json.Unmarshal(m.key, &key) == nil && key == name
}

// maxFields is the most names fields reads at once: a request's two, its payload's one.
const maxFields = 2

// fields scans a document that must be one object, returning the last value of each named key
// (as encoding/json and Python keep the last of duplicate keys), in the order of names (at most
// maxFields of them). The values come back in an array, not a slice that a request would
// allocate twice.
func fields(doc []byte, names ...string) (values [maxFields][]byte, isObject bool, err error) {
	s := scanner{b: doc}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		isObject = true
		err = s.object(func(m member) {
			for i, name := range names {
				if m.keyIs(name) {
					values[i] = m.value
				}
			}
		})
	} else {
		_, err = s.value()
	}
	if err == nil {
		s.ws()
		if s.i < len(s.b) {
			err = s.fail("invalid character after the top-level value")
		}
	}
	return values, isObject, err
}
