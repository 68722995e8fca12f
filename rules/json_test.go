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
	`{"a": 1, "skip": "\q"}`, `{"a": 1, "skip": "\u12"}`, `{"skip": [1e400], "a": 1}`, `{"skip": {"x": [1, {"y": "\u00e9"}]}, "a": {"b": 2}}`,
	`{"a": {"b": {"c": 1, "d": 2}, "e": 3}, "x": [1]}`, `{"skip": 01}`, `{"skip": tru}`, `{"skip": "a`,
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

// jsonShapes are projections checkJSON also decodes every input with.
var jsonShapes = func() []*shape {
	var out []*shape
	for _, paths := range [][][]string{
		{},
		{{"a"}},
		{{"a", "b"}},
		{{"a", "b"}, {"x"}},
		{{"a", "b", "c"}, {"a"}},
		{{"kind"}, {"nested", "kind"}},
	} {
		sh := &shape{keys: map[string]*shape{}}
		for _, p := range paths {
			sh.add(p)
		}
		out = append(out, sh)
	}
	return out
}()

// prune is the reference projection: the full value cut down to sh.
func prune(v any, sh *shape) any {
	obj, ok := v.(map[string]any)
	if sh == nil || !ok {
		return v
	}
	out := map[string]any{}
	for k, child := range sh.keys {
		if e, ok := obj[k]; ok {
			out[k] = prune(e, child)
		}
	}
	return out
}

func checkJSON(t *testing.T, in string) {
	want, wantOK := referenceJSON(in)
	for _, sh := range jsonShapes {
		got, state := decodeJSONShape(in, sh)
		if gotOK := state == bodyJSON; gotOK != wantOK || wantOK && !reflect.DeepEqual(got, prune(want, sh)) {
			t.Errorf("decodeJSONShape(%q, %v) = %#v, %v, want %#v, %v", in, sh, got, gotOK, prune(want, sh), wantOK)
		}
	}
	got, state := decodeJSON(in)
	if gotOK := state == bodyJSON; gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeJSON(%q) = %#v, %v, want %#v, %v", in, got, gotOK, want, wantOK)
	}
}
