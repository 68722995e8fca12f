package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// referenceJSON is what decodeJSON must agree with.
func referenceJSON(payload string) (any, bool) {
	var v any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		return nil, false
	}
	return v, true
}

var jsonSeeds = []string{
	``, ` `, `null`, `true`, `false`, `0`, `-0`, `1.5e3`, `-1E-2`, `1e400`, `01`, `1.`, `.5`, `-`, `+1`,
	`"a"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"\x"`, "\"\xff\xfe\"", "\"a\tb\"", `"\/\b\f\n\r\t\\\""`,
	`[]`, `[1,]`, `[1 2]`, `{}`, `{"a":1,}`, `{"a" 1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":null}]}}`,
	` {"x": "y"} `, `{"x": "y"} x`, `nul`, `tru`, `[`, `{`, `{"a":`, `"abc`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, in := range jsonSeeds {
		checkJSON(t, in)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, in := range jsonSeeds {
		f.Add(in)
	}
	f.Fuzz(checkJSON)
}

func checkJSON(t *testing.T, in string) {
	want, wantOK := referenceJSON(in)
	got, state := decodeJSON(in)
	if gotOK := state == bodyJSON; gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeJSON(%q) = %#v, %v, want %#v, %v", in, got, gotOK, want, wantOK)
	}
}
