package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// cli runs a gateway subcommand in-process and returns its exit code,
// stdout and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// replyKeys lists the reply streams `gateway request` left in Redis.
func (h *harness) replyKeys() []string {
	h.t.Helper()
	keys, err := h.rdb.Keys(context.Background(), "gateway:reply:*").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

func decodeReplies(t *testing.T, out string) []map[string]string {
	t.Helper()
	var replies []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r map[string]string
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("output line %q is not a JSON object: %v", line, err)
		}
		replies = append(replies, r)
	}
	return replies
}

// TestRequestExitCodes runs `gateway request` against a real gateway:
// exit 0 for a delivered message, 1 for a dead-lettered one (and for a
// fan-out where one of two routes dead-letters), 2 on timeout; no reply
// stream is left behind, not even by a reply that comes after the request
// returned.
func TestRequestExitCodes(t *testing.T) {
	h := newHarness(t)
	h.startFailureGateway()
	cfg, _ := h.writeConfig("cli.yaml", "cli", []string{"orders"}, "")

	cases := []struct {
		name     string
		args     []string
		code     int
		outcomes []string
	}{
		{"delivered", []string{"--field", "kind=ok", "--payload", `{"id":"1"}`}, 0, []string{"delivered"}},
		{"permanent error", []string{"--field", "kind=perm"}, 1, []string{"dead_lettered"}},
		{"schema", []string{"--field", "kind=schema", "--payload", `{}`}, 1, []string{"dead_lettered"}},
		{"fan-out, one route fails", []string{"--field", "kind=fan", "--replies", "2"}, 1, []string{"delivered", "dead_lettered"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"request", "--config", cfg, "--stream", "orders", "--timeout", "20s"}, c.args...)
			code, out, errText := cli(args...)
			if code != c.code {
				t.Fatalf("request %v: exit %d, want %d\nstdout %s\nstderr %s", c.args, code, c.code, out, errText)
			}
			replies := decodeReplies(t, out)
			if len(replies) != len(c.outcomes) {
				t.Fatalf("request %v printed %d replies, want %d: %s", c.args, len(replies), len(c.outcomes), out)
			}
			for i, r := range replies {
				if r["outcome"] != c.outcomes[i] || r["correlation_id"] == "" || r["message_id"] == "" {
					t.Errorf("reply %d = %v, want outcome %s", i, r, c.outcomes[i])
				}
			}
			if keys := h.replyKeys(); len(keys) != 0 {
				t.Errorf("reply streams left behind: %v", keys)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		code, out, errText := cli("request", "--config", cfg, "--stream", "nobody-reads-this", "--timeout", "300ms", "--field", "kind=ok")
		if code != 2 {
			t.Fatalf("exit %d, want 2\nstdout %s\nstderr %s", code, out, errText)
		}
		if el := time.Since(start); el < 300*time.Millisecond || el > 10*time.Second {
			t.Errorf("timed out after %s, want about 300ms", el)
		}
		if !strings.Contains(errText, "timed out") {
			t.Errorf("stderr %q does not say it timed out", errText)
		}
		if keys := h.replyKeys(); len(keys) != 0 {
			t.Errorf("reply streams left after a timeout: %v", keys)
		}
	})

	// One reply asked for, two coming (fan-out): the second arrives after
	// the requester deleted its stream and must not create it again.
	t.Run("late reply leaves no key", func(t *testing.T) {
		code, out, errText := cli("request", "--config", cfg, "--stream", "orders", "--timeout", "20s", "--field", "kind=fan")
		if code != 0 {
			t.Fatalf("exit %d, want 0 (the first reply is the delivered route)\n%s\n%s", code, out, errText)
		}
		h.waitAcked(10*time.Second, "orders")
		if keys := h.replyKeys(); len(keys) != 0 {
			t.Errorf("a late reply re-created the reply stream: %v", keys)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"request", "--config", cfg},
			{"request", "--config", cfg, "--stream", "orders", "--timeout", "0s"},
			{"request", "--config", cfg, "--stream", "orders", "--field", "novalue"},
		} {
			if code, _, errText := cli(args...); code != 2 || errText == "" {
				t.Errorf("%v: exit %d (%q), want 2 with a message", args, code, errText)
			}
		}
		if code, _, errText := cli("request", "--config", cfg, "--stream", "orders", "--field", "reply_to=x"); code != 1 || !strings.Contains(errText, "reply_to") {
			t.Errorf("request with reply_to: exit %d (%q), want 1 naming reply_to", code, errText)
		}
	})
}

// TestPublishPrintsEntryID: `gateway publish` XADDs fields and payload and
// prints the new entry's ID.
func TestPublishPrintsEntryID(t *testing.T) {
	h := newHarness(t)
	h.writeRules("routes: []\n")
	cfg, _ := h.writeConfig("cli.yaml", "cli", []string{"orders"}, "")
	code, out, errText := cli("publish", "--config", cfg, "--stream", "orders", "--field", "type=order.created", "--payload", `{"id":7}`)
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errText)
	}
	id := strings.TrimSpace(out)
	msgs, err := h.rdb.XRange(context.Background(), "orders", id, id).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("entry %q: %v, %v", id, msgs, err)
	}
	if v := msgs[0].Values; v["type"] != "order.created" || v["payload"] != `{"id":7}` || len(v) != 2 {
		t.Errorf("published fields = %v", v)
	}
	if code, _, _ := cli("publish", "--config", cfg); code != 2 {
		t.Errorf("publish without --stream: exit %d, want 2", code)
	}
}
