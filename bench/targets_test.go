package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHealthyIn(t *testing.T) {
	const doc = `[{"service":"a","instances":[{"state":"healthy"},{"state":"ejected"},{"state":"healthy"}]},
	              {"service":"b","instances":[{"state":"healthy"}]}]`
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		service string
		want    int
	}{{"a", 2}, {"b", 1}, {"c", 0}}
	for _, tt := range tests {
		if got := healthyIn(v, tt.service); got != tt.want {
			t.Errorf("healthyIn(%q) = %d, want %d", tt.service, got, tt.want)
		}
	}
	var wrapped any
	_ = json.Unmarshal([]byte(`{"services":`+doc+`}`), &wrapped)
	if got := healthyIn(wrapped, "a"); got != 2 {
		t.Errorf("healthyIn(wrapped, a) = %d, want 2", got)
	}
}

func TestRulesAndConfigYAML(t *testing.T) {
	r := string(rulesYAML(2, "svc", 3))
	for _, want := range []string{"name: r0\n", `match: 'headers.rk == "r1"'`, "path: /r1", "name: reload-gen-3", "action: dlq"} {
		if !contains(r, want) {
			t.Errorf("rulesYAML lacks %q:\n%s", want, r)
		}
	}
	c := string(configYAML(gatewayConfig{RedisAddr: "127.0.0.1:1", Stream: "s", Algorithm: "round_robin", Batch: 7, MaxInflight: 9}))
	for _, want := range []string{"addrs: [\"127.0.0.1:1\"]", "streams: [\"s\"]", "batch: 7", "max_inflight: 9", "algorithm: round_robin"} {
		if !contains(c, want) {
			t.Errorf("configYAML lacks %q:\n%s", want, c)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
