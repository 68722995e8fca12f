package rules

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBatchField(t *testing.T) {
	tests := []struct {
		name  string
		batch string
		want  Batch
	}{
		{"both", "{max_messages: 100, max_wait: 20ms}", Batch{100, 20 * time.Millisecond}},
		{"default wait", "{max_messages: 7}", Batch{7, DefaultBatchWait}},
		{"limits", "{max_messages: 1000, max_wait: 1s}", Batch{1000, time.Second}},
		{"one", "{max_messages: 1, max_wait: 1us}", Batch{1, time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compileString(t, "routes:\n  - {name: r, service: s, batch: "+tt.batch+"}\n")
			got := s.Routes()[0].Batch
			if got == nil || *got != tt.want {
				t.Errorf("batch %s = %+v, want %+v", tt.batch, got, tt.want)
			}
		})
	}
	if b := compileString(t, "routes:\n  - {name: r, service: s}\n").Routes()[0].Batch; b != nil {
		t.Errorf("route without batch: Batch = %+v, want nil", b)
	}
}

func TestBatchFieldErrors(t *testing.T) {
	tests := []struct {
		name, route string
		want        []string
	}{
		{"not a mapping", "batch: 100", []string{`f.yaml:4: route "r": batch: must be a mapping like {max_messages: 100, max_wait: 5ms}`}},
		{"max_messages required", "batch: {max_wait: 5ms}", []string{`f.yaml:4: route "r": batch: max_messages is required`}},
		{"max_messages zero", "batch: {max_messages: 0}", []string{`f.yaml:4: route "r": batch: max_messages: 0 is not in 1..1000`}},
		{"max_messages too many", "batch: {max_messages: 1001}", []string{`f.yaml:4: route "r": batch: max_messages: 1001 is not in 1..1000`}},
		{"max_messages not int", "batch: {max_messages: lots}", []string{`f.yaml:4: route "r": batch: max_messages: must be an integer`}},
		{"max_wait no unit", "batch: {max_messages: 5, max_wait: 5}", []string{`f.yaml:4: route "r": batch: max_wait: "5" is not a duration like 5ms`}},
		{"max_wait zero", "batch: {max_messages: 5, max_wait: 0s}", []string{`f.yaml:4: route "r": batch: max_wait: 0s must be more than 0 and at most 1s`}},
		{"max_wait too long", "batch: {max_messages: 5, max_wait: 2s}", []string{`f.yaml:4: route "r": batch: max_wait: 2s must be more than 0 and at most 1s`}},
		{"unknown key", "batch: {max_messages: 5, size: 3}", []string{`f.yaml:4: route "r": batch: unknown key "size" (want max_messages, max_wait)`}},
		{"several", "batch: {max_messages: 0, max_wait: -1s}", []string{`f.yaml:4: route "r": batch: max_messages: 0 is not in 1..1000; max_wait: -1s must be more than 0 and at most 1s`}},
		{"with path_expr", "batch: {max_messages: 5}\n    path_expr: '\"/x\"'", []string{`f.yaml:4: route "r": batch: cannot be combined with path_expr (one request goes to one path)`}},
		{"path_expr first", "path_expr: '\"/x\"'\n    batch: {max_messages: 5}", []string{`f.yaml:5: route "r": batch: cannot be combined with path_expr (one request goes to one path)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "routes:\n  - name: r\n    service: s\n    " + tt.route + "\n"
			s, err := Compile([]Source{{Name: "f.yaml", Data: []byte(src)}})
			if s != nil {
				t.Fatalf("Compile(%q) returned a set, want an error", src)
			}
			var got []string
			for _, p := range problemsOf(t, err) {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compile(%q) problems =\n%s\nwant\n%s", src, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestExplainShowsBatch(t *testing.T) {
	s := compileString(t, "routes:\n  - {name: b, service: s, continue: true, batch: {max_messages: 50, max_wait: 10ms}}\n  - {name: single, service: s}\n")
	out, err := json.Marshal(s.Explain(msg("orders", nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"route":"b","service":"s","method":"POST","path":"/","tags":[],"priority":0,"continue":true,"batch":{"max_messages":50,"max_wait":"10ms"}},` +
		`{"route":"single","service":"s","method":"POST","path":"/","tags":[],"priority":0,"continue":false}]`
	if string(out) != want {
		t.Errorf("Explain = %s\nwant %s", out, want)
	}
}
