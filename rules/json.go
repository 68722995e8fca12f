package rules

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The payload decoder. Decoding the body is most of the cost of matching a
// message, and encoding/json spends it on reflection and on copying: this
// decoder makes one pass over the payload string, slices keys and unescaped
// strings out of it without copying, and produces exactly the values
// encoding/json would for an `any` (map[string]any, []any, string, float64,
// bool, nil), accepting and rejecting the same inputs. FuzzDecodeJSON holds
// it to that.

// maxJSONDepth matches encoding/json's nesting limit.
const maxJSONDepth = 10000

var errJSON = errors.New("invalid JSON")

// decodeJSON decodes payload; the state is bodyInvalid when it is not
// exactly one JSON value (surrounding whitespace allowed).
func decodeJSON(payload string) (any, bodyState) {
	return decodeJSONShape(payload, nil)
}

// decodeJSONShape decodes the part of payload that sh says is observable
// (nil: all of it). The rest is skipped without allocating, but validated
// exactly as if decoded, so a payload is JSON or not regardless of sh.
func decodeJSONShape(payload string, sh *shape) (any, bodyState) {
	return decodeJSONShapeInto(payload, sh, nil)
}

// decodeJSONShapeInto is decodeJSONShape reusing the containers of sc
// (nil: allocate them all): sc.maps[n.id] (when long enough) is cleared
// and refilled for the object found at shape node n instead of a new map.
// Each numbered node matches at most one live object (a repeated key
// replaces the earlier value, as it does anyway), so the result is the
// same. Arrays, and objects decoded whole (below an observed key) or as
// array elements (nodes below an elems, which have no id), are taken in
// turn from sc's spares. The caller must not keep a previous result.
func decodeJSONShapeInto(payload string, sh *shape, sc *jsonScratch) (any, bodyState) {
	d := jsonDecoder{s: payload, sc: sc}
	if sc != nil {
		sc.nobj, sc.narr = 0, 0
	}
	d.skipSpace()
	v, err := d.value(0, sh)
	if err != nil {
		return nil, bodyInvalid
	}
	d.skipSpace()
	if d.i != len(d.s) {
		return nil, bodyInvalid
	}
	return v, bodyJSON
}

type jsonDecoder struct {
	s  string
	i  int
	sc *jsonScratch // reusable containers; nil: allocate
}

// maxSpares bounds the whole-decoded objects and arrays a jsonScratch
// keeps for reuse: a payload with more of them allocates the rest, and a
// pooled scratch does not hold on to a huge payload's containers.
const maxSpares = 32

// jsonScratch holds containers a decoding may reuse; they belong to the
// previous result, which must no longer be used. Not safe for concurrent
// use.
type jsonScratch struct {
	maps []map[string]any // by shape node id
	// objs and arrs are spares for containers decoded whole; nobj and
	// narr count those taken by the current decoding.
	objs       []map[string]any
	arrs       [][]any
	nobj, narr int
}

// clear drops every reference to payload strings, keeping the storage.
func (sc *jsonScratch) clear() {
	for _, m := range sc.maps {
		clear(m)
	}
	for _, m := range sc.objs {
		clear(m)
	}
	for _, a := range sc.arrs {
		clear(a[:cap(a)])
	}
}

// newObject returns an empty map for an object found at shape node sh
// (nil: an object decoded whole). Nodes without an id (below an array's
// elems: one object per element) take spares, as whole objects do.
func (d *jsonDecoder) newObject(sh *shape) map[string]any {
	// A hint of 8 allocates the map's first group up front instead of
	// growing into it on the first insert; payload objects are small.
	sc := d.sc
	switch {
	case sc == nil:
	case sh != nil && sh.id >= 0 && sh.id < len(sc.maps):
		if m := sc.maps[sh.id]; m != nil {
			clear(m)
			return m
		}
		m := make(map[string]any, 8)
		sc.maps[sh.id] = m
		return m
	case sc.nobj < maxSpares:
		sc.nobj++
		if sc.nobj <= len(sc.objs) {
			m := sc.objs[sc.nobj-1]
			clear(m)
			return m
		}
		m := make(map[string]any, 8)
		sc.objs = append(sc.objs, m)
		return m
	}
	return make(map[string]any, 8)
}

// newArray returns an empty, non-nil slice to append an array's elements
// to; putArray records what it grew into, for reuse.
func (d *jsonDecoder) newArray() ([]any, int) {
	sc := d.sc
	if sc == nil || sc.narr >= maxSpares {
		return []any{}, -1
	}
	sc.narr++
	if sc.narr > len(sc.arrs) {
		sc.arrs = append(sc.arrs, make([]any, 0, 4))
	}
	a := sc.arrs[sc.narr-1]
	clear(a[:cap(a)])
	return a[:0], sc.narr - 1
}

func (d *jsonDecoder) putArray(a []any, slot int) {
	if slot >= 0 {
		d.sc.arrs[slot] = a
	}
}

func (d *jsonDecoder) skipSpace() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int, sh *shape) (any, error) {
	if d.i >= len(d.s) {
		return nil, errJSON
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(depth+1, sh)
	case c == '[':
		var elems *shape
		if sh != nil {
			elems = sh.elems
		}
		return d.array(depth+1, elems)
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return true, nil
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return false, nil
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
		return nil, nil
	}
	return nil, errJSON
}

// object decodes an object; with a non-nil shape only the shape's keys are
// kept, the other values are skipped.
func (d *jsonDecoder) object(depth int, sh *shape) (any, error) {
	if depth > maxJSONDepth {
		return nil, errJSON
	}
	d.i++ // {
	m := d.newObject(sh)
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, errJSON
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, errJSON
		}
		d.i++
		d.skipSpace()
		child, keep := (*shape)(nil), true
		if sh != nil {
			child, keep = sh.lookup(k)
		}
		if !keep {
			if err := d.skip(depth); err != nil {
				return nil, err
			}
		} else {
			v, err := d.value(depth, child)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		d.skipSpace()
		if d.i >= len(d.s) {
			return nil, errJSON
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.skipSpace()
		case '}':
			d.i++
			return m, nil
		default:
			return nil, errJSON
		}
	}
}

// array decodes an array, every element of it; with a non-nil elems each
// element is decoded for that shape.
func (d *jsonDecoder) array(depth int, elems *shape) (any, error) {
	if depth > maxJSONDepth {
		return nil, errJSON
	}
	d.i++ // [
	a, slot := d.newArray()
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value(depth, elems)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.skipSpace()
		if d.i >= len(d.s) {
			return nil, errJSON
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.skipSpace()
		case ']':
			d.i++
			d.putArray(a, slot)
			return a, nil
		default:
			return nil, errJSON
		}
	}
}

// str reads a string. Without escapes or invalid UTF-8 it is a slice of the
// payload; otherwise it is rebuilt, invalid bytes and lone surrogates
// becoming U+FFFD as encoding/json does.
func (d *jsonDecoder) str() (string, error) {
	start := d.i + 1
	i := start
	simple := true
	for {
		if i >= len(d.s) {
			return "", errJSON
		}
		c := d.s[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return "", errJSON
		}
		if c == '\\' {
			simple = false
			i += 2
			continue
		}
		if c >= utf8.RuneSelf {
			simple = false
		}
		i++
	}
	raw := d.s[start:i]
	d.i = i + 1
	if simple {
		return raw, nil
	}
	return unquote(raw)
}

func unquote(raw string) (string, error) {
	if !strings.Contains(raw, `\`) && utf8.ValidString(raw) {
		return raw, nil
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(raw[i:])
			b = utf8.AppendRune(b, r) // RuneError for invalid bytes
			i += size
			continue
		}
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return "", errJSON
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return "", errJSON
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(strings.TrimPrefix(raw[i:], `\u`)); ok && strings.HasPrefix(raw[i:], `\u`) {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", errJSON
		}
		i += 2
	}
	return string(b), nil
}

func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number validates the JSON number grammar, then parses it as float64.
func (d *jsonDecoder) number() (any, error) {
	f, err := d.numberText(true)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// maxPlainDigits is the most digits before the point a number without
// an exponent may have and certainly be in float64's range (~1.8e308).
const maxPlainDigits = 300

// numberText reads a number; out of range values are errors, as in
// encoding/json. Without parse (the number is skipped), the value is only
// computed when it could be out of range.
func (d *jsonDecoder) numberText(parse bool) (float64, error) {
	start := d.i
	i := d.i
	if d.s[i] == '-' {
		i++
	}
	switch {
	case i < len(d.s) && d.s[i] == '0':
		i++
	case i < len(d.s) && d.s[i] >= '1' && d.s[i] <= '9':
		i = digits(d.s, i)
	default:
		return 0, errJSON
	}
	intEnd := i
	if i < len(d.s) && d.s[i] == '.' {
		j := digits(d.s, i+1)
		if j == i+1 {
			return 0, errJSON
		}
		i = j
	}
	if i < len(d.s) && (d.s[i] == 'e' || d.s[i] == 'E') {
		i++
		if i < len(d.s) && (d.s[i] == '+' || d.s[i] == '-') {
			i++
		}
		j := digits(d.s, i)
		if j == i {
			return 0, errJSON
		}
		i = j
		parse = true
	}
	d.i = i
	if !parse && intEnd-start <= maxPlainDigits {
		return 0, nil
	}
	f, err := strconv.ParseFloat(d.s[start:i], 64)
	if err != nil {
		return 0, errJSON // out of range: encoding/json rejects it too
	}
	return f, nil
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// skip validates one value exactly as value would, without keeping it.
func (d *jsonDecoder) skip(depth int) error {
	if d.i >= len(d.s) {
		return errJSON
	}
	switch c := d.s[d.i]; {
	case c == '{' || c == '[':
		return d.skipContainer(depth + 1)
	case c == '"':
		return d.skipString()
	case c == '-' || c >= '0' && c <= '9':
		_, err := d.numberText(false)
		return err
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
	default:
		return errJSON
	}
	return nil
}

func (d *jsonDecoder) skipContainer(depth int) error {
	if depth > maxJSONDepth {
		return errJSON
	}
	closing := byte('}')
	if d.s[d.i] == '[' {
		closing = ']'
	}
	d.i++
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == closing {
		d.i++
		return nil
	}
	for {
		if closing == '}' {
			if d.i >= len(d.s) || d.s[d.i] != '"' {
				return errJSON
			}
			if err := d.skipString(); err != nil {
				return err
			}
			d.skipSpace()
			if d.i >= len(d.s) || d.s[d.i] != ':' {
				return errJSON
			}
			d.i++
			d.skipSpace()
		}
		if err := d.skip(depth); err != nil {
			return err
		}
		d.skipSpace()
		if d.i >= len(d.s) {
			return errJSON
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.skipSpace()
		case closing:
			d.i++
			return nil
		default:
			return errJSON
		}
	}
}

// skipString validates a string's escapes as unquote does.
func (d *jsonDecoder) skipString() error {
	for i := d.i + 1; i < len(d.s); {
		switch c := d.s[i]; {
		case c == '"':
			d.i = i + 1
			return nil
		case c < 0x20:
			return errJSON
		case c == '\\':
			if i+1 >= len(d.s) {
				return errJSON
			}
			switch d.s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(d.s[i+2:]); !ok {
					return errJSON
				}
				i += 6
			default:
				return errJSON
			}
		default:
			i++
		}
	}
	return errJSON
}
