package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/workload"
	"github.com/msgroute/gateway/rules"
)

// TestRealisticRulesMatchOneRouteFarDown checks the realistic rule set's
// promise: it compiles, and every realistic payload matches exactly one
// route, the 97th of 100, after being evaluated against the others.
func TestRealisticRulesMatchOneRouteFarDown(t *testing.T) {
	for _, n := range []int{100, 120} {
		set, err := rules.Compile([]rules.Source{{Name: "rules.yaml", Data: workload.RulesYAML(n, "svc", 0)}})
		if err != nil {
			t.Fatalf("workload.RulesYAML(%d) does not compile: %v", n, err)
		}
		want := fmt.Sprintf("r%d", workload.MatchIndex(n))
		var buf []byte
		for seq := int64(0); seq < 5000; seq += 37 {
			buf = workload.AppendOrder(buf, seq, time.Now().UnixNano())
			if len(buf) < 250 || len(buf) > 400 {
				t.Fatalf("payload of %d bytes, want about 300: %s", len(buf), buf)
			}
			m := rules.NewMessage("s", "1-1", map[string]string{"payload": string(buf), "source": "bench"}, 1)
			got := set.Match(m, nil)
			if len(got) != 1 || got[0].Route.Name != want || got[0].Err != nil {
				t.Fatalf("Match(seq %d) with %d routes = %v, want only %s", seq, n, got, want)
			}
			if s, _, ok := parseStamp(buf); !ok || s != seq {
				t.Fatalf("parseStamp(workload.AppendOrder(%d)) = %d, %v", seq, s, ok)
			}
		}
	}
}

func TestConfigModes(t *testing.T) {
	base := gatewayConfig{RedisAddr: "127.0.0.1:1", Stream: "s", Batch: 7, MaxInflight: 9}
	cases := []struct {
		mode          string
		want, wantNot []string
	}{
		{configWindow, []string{"batch: 7", "max_inflight: 9"}, []string{"service_concurrency"}},
		{configDefault, nil, []string{"batch:", "max_inflight", "service_concurrency"}},
		{configTuned, []string{"batch: 7", "max_inflight: 9", "service_concurrency: 9"}, nil},
	}
	for _, c := range cases {
		cfg := base
		cfg.Mode = c.mode
		y := string(configYAML(cfg))
		for _, w := range c.want {
			if !strings.Contains(y, w) {
				t.Errorf("configYAML(%s) lacks %q:\n%s", c.mode, w, y)
			}
		}
		for _, w := range c.wantNot {
			if strings.Contains(y, w) {
				t.Errorf("configYAML(%s) has %q:\n%s", c.mode, w, y)
			}
		}
	}
}

// BenchmarkRealisticMatch is the rules' share of a realistic message's
// cost: decoding the ~300-byte body and evaluating the candidate routes.
func BenchmarkRealisticMatch(b *testing.B) {
	set, err := rules.Compile([]rules.Source{{Name: "rules.yaml", Data: workload.RulesYAML(100, "svc", 0)}})
	if err != nil {
		b.Fatal(err)
	}
	payload := string(workload.AppendOrder(nil, 12345, 1))
	fields := map[string]string{"payload": payload, "source": "bench"}
	var m rules.Message
	var dst []rules.Match
	b.ReportAllocs()
	for b.Loop() {
		m.Reset("s", "1-1", fields, 1)
		dst = set.Match(&m, dst[:0])
	}
}
