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
	// numbers that are skipped: range checked only when they can be out of it
	`{"skip": 1` + strings.Repeat("0", 308) + `, "a": 1}`, `{"skip": 1` + strings.Repeat("0", 309) + `, "a": 1}`,
	`{"skip": -1` + strings.Repeat("0", 309) + `.5, "a": 1}`, `{"skip": 1e308, "a": 1}`, `{"skip": 2e308, "a": 1}`,
	`{"skip": 1e-400, "a": 1}`, `{"skip": 1.5E+3, "a": 1}`, `{"skip": -0.0e0, "a": 1}`, `{"skip": 1.e3, "a": 1}`,
	`{"skip": 1e, "a": 1}`, `{"skip": -, "a": 1}`, `{"skip": [1e400], "a": 1}`, `{"skip": 12345678901234567890123, "a": 1}`,
	`{"a": [[1, [2]], {"b": [3]}], "x": [{}, [], ""]}`,
	// arrays of objects cut to the keys read of their elements
	`{"a": [{"b": 1, "c": 2}, {"c": 3}, {"b": {"x": [1]}, "b": 4}], "x": [{"y": {"z": 1, "w": 2}, "v": 3}]}`,
	`{"a": [[{"c": 1, "d": 2}], [], [[{"c": 3}]], 5, "s", null], "x": [[{"y": 1}]]}`,
	`{"a": {"b": {"c": [{"z": 1, "q": [2]}, {"q": 3}]}}, "more": [{"o": [{"p": 1, "r": 2}, 7]}, {"o": {"p": 1}}]}`,
	`{"a": [{"d": {"e": 1, "f": 2}, "g": 3}, {"d": [1]}], "x": [{"y": "\u00e9", "n": 1e5}]}`,
	`{"a": [{"b": 1, "skip": 1e400}]}`, `{"a": [{"b": 1}, {"skip": "\q"}]}`, `{"x": [{"y": 1}, {"y": 2},]}`,
	`{"a": [{"b": 1}], "a": [{"c": 2}, {"b": 3}]}`, `[{"a": 1}, {"a": [{"b": 2}]}]`,
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
		// array elements cut to a shape (body.a[0].b), nested arrays,
		// whole elements winning whichever path comes first
		{{"a", elemKey, "b"}},
		{{"a", elemKey, "b"}, {"a", "b", "c"}, {"x", elemKey}},
		{{"x", elemKey}, {"x", elemKey, "y"}},
		{{"x", elemKey, "y"}, {"x", elemKey}},
		{{"a", "b", "c", elemKey, "z"}, {"more", elemKey, "o", elemKey, "p"}},
		{{"a", elemKey, elemKey, "c"}, {"a", elemKey, "d", "e"}},
		{{"skip", elemKey, "x"}, {"x", elemKey, "y", "z"}},
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
	if sh == nil {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, child := range sh.keys {
			if e, ok := v[k]; ok {
				out[k] = prune(e, child)
			}
		}
		return out
	case []any:
		if sh.elems == nil {
			return v
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = prune(e, sh.elems)
		}
		return out
	}
	return v
}

// dirty is decoded into a scratch before the input under test, so that
// every reusable container holds something the next decoding must not
// show: objects and arrays at every depth, more of them than are kept.
var dirty = `{"a": {"b": {"c": [1, {"z": 1}], "d": [[2], [3]]}, "e": {"f": 4}}, "x": [{"y": 5}, {"y": 6}],
	"kind": "k", "nested": {"kind": [7]}, "more": [` + strings.Repeat(`{"o": [8]},`, maxSpares) + `{}]}`

func checkJSON(t *testing.T, in string) {
	want, wantOK := referenceJSON(in)
	for _, sh := range jsonShapes {
		got, state := decodeJSONShape(in, sh)
		if gotOK := state == bodyJSON; gotOK != wantOK || wantOK && !reflect.DeepEqual(got, prune(want, sh)) {
			t.Errorf("decodeJSONShape(%q, %v) = %#v, %v, want %#v, %v", in, sh, got, gotOK, prune(want, sh), wantOK)
		}
		// The same with reused containers: decoding into a scratch a
		// previous payload filled gives the same value.
		sc := &jsonScratch{maps: make([]map[string]any, sh.number())}
		decodeJSONShapeInto(dirty, sh, sc)
		got, state = decodeJSONShapeInto(in, sh, sc)
		if gotOK := state == bodyJSON; gotOK != wantOK || wantOK && !reflect.DeepEqual(got, prune(want, sh)) {
			t.Errorf("decodeJSONShapeInto(%q, %v) after another payload = %#v, %v, want %#v, %v", in, sh, got, gotOK, prune(want, sh), wantOK)
		}
	}
	sc := &jsonScratch{}
	decodeJSONShapeInto(dirty, nil, sc)
	if got, state := decodeJSONShapeInto(in, nil, sc); state == bodyJSON != wantOK || wantOK && !reflect.DeepEqual(got, want) {
		t.Errorf("decodeJSONShapeInto(%q, nil) after another payload = %#v, %v, want %#v, %v", in, got, state == bodyJSON, want, wantOK)
	}
	got, state := decodeJSON(in)
	if gotOK := state == bodyJSON; gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeJSON(%q) = %#v, %v, want %#v, %v", in, got, gotOK, want, wantOK)
	}
}
