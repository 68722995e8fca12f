package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(write(t, "consumer: {streams: [orders]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		// Defaults this package owns.
		{"redis.addrs", c.Redis.Addrs, []string{"127.0.0.1:6379"}},
		{"consumer.group", c.Consumer.Group, "gateway"},
		{"consumer.dlq_stream", c.Consumer.DLQStream, "gateway:dlq"},
		{"consul.scheme", c.Consul.Scheme, "http"},
		{"rules.path", c.Rules.Path, "configs/rules.yaml"},
		{"log.format", c.Log.Format, "text"},
		// Keys a component fills: unset is zero (one source per default:
		// router.Config, dispatch.Config, balancer.Config, discovery.Config,
		// health.Config).
		{"consumer.batch", c.Consumer.Batch, 0},
		{"consumer.claim_idle", c.Consumer.ClaimIdle, time.Duration(0)},
		{"consumer.claim_interval", c.Consumer.ClaimInterval, time.Duration(0)},
		{"consumer.max_payload_bytes", c.Consumer.MaxPayloadBytes, 0},
		{"dispatch.timeout", c.Dispatch.Timeout, time.Duration(0)},
		{"dispatch.max_conns_per_host", c.Dispatch.MaxConnsPerHost, 0},
		{"consul.address", c.Consul.Address, ""},
		{"admin.listen", c.Admin.Listen, ""},
		{"balancer.algorithm", c.Balancer.Algorithm, ""},
		{"consumer.retention", c.Consumer.Retention, "off"},
		{"consumer.retention_keep", c.Consumer.RetentionKeep, time.Duration(0)},
		{"consumer.dlq_maxlen", c.Consumer.DLQMaxLen, int64(0)},
	}
	for _, ch := range checks {
		if !equal(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.Consumer.Name == "" {
		t.Error("consumer.name defaults to the hostname, got empty")
	}
}

// TestDependentKeysAloneAreValid: setting one of two keys that depend on
// each other never makes a config invalid; the other is derived (by the
// router, see router.TestConfigFillDerivesDependentDefaults).
func TestDependentKeysAloneAreValid(t *testing.T) {
	cases := []struct{ name, body string }{
		{"claim_idle 2s alone", "consumer: {streams: [a], claim_idle: 2s}\n"},
		{"claim_idle 1s alone", "consumer: {streams: [a], claim_idle: 1s}\n"},
		{"dispatch.timeout 20s alone", "consumer: {streams: [a]}\ndispatch: {timeout: 20s}\n"},
		{"both, compatible", "consumer: {streams: [a], claim_idle: 2s}\ndispatch: {timeout: 900ms}\n"},
		{"claim_interval above claim_idle", "consumer: {streams: [a], claim_idle: 2s, claim_interval: 5s}\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Load(write(t, c.body)); err != nil {
				t.Fatalf("Load(%q) = %v, want valid", c.body, err)
			}
		})
	}
	t.Setenv("GATEWAY_CONSUMER_CLAIM_IDLE", "2s")
	if _, err := Load(write(t, "consumer: {streams: [a]}\n")); err != nil {
		t.Fatalf("Load with GATEWAY_CONSUMER_CLAIM_IDLE=2s = %v, want valid", err)
	}
}

// TestConflictingExplicitKeysNameBoth: only values the user set are
// refused, and the error names both keys.
func TestConflictingExplicitKeysNameBoth(t *testing.T) {
	cases := []struct{ name, body string }{
		{"file", "consumer: {streams: [a], claim_idle: 2s}\ndispatch: {timeout: 5s}\n"},
		{"equal to half", "consumer: {streams: [a], claim_idle: 2s}\ndispatch: {timeout: 1s}\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(write(t, c.body))
			if err == nil || !strings.Contains(err.Error(), "dispatch.timeout") || !strings.Contains(err.Error(), "consumer.claim_idle") {
				t.Fatalf("Load(%q) error = %v, want one naming dispatch.timeout and consumer.claim_idle", c.body, err)
			}
		})
	}
	t.Run("env and file", func(t *testing.T) {
		t.Setenv("GATEWAY_DISPATCH_TIMEOUT", "3s")
		_, err := Load(write(t, "consumer: {streams: [a], claim_idle: 4s}\n"))
		if err == nil || !strings.Contains(err.Error(), "dispatch.timeout") || !strings.Contains(err.Error(), "consumer.claim_idle") {
			t.Fatalf("Load error = %v, want one naming dispatch.timeout and consumer.claim_idle", err)
		}
	})
}

// TestExplicitZeroIsRefused: a key written as 0 is not "unset".
func TestExplicitZeroIsRefused(t *testing.T) {
	for _, key := range []string{"batch", "max_deliveries", "block", "claim_interval", "reply_maxlen"} {
		body := "consumer: {streams: [a], " + key + ": 0}\n"
		_, err := Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), "consumer."+key) {
			t.Errorf("Load(%q) error = %v, want one naming consumer.%s", body, err, key)
		}
	}
	t.Setenv("GATEWAY_CONSUMER_BATCH", "0")
	if _, err := Load(write(t, "consumer: {streams: [a]}\n")); err == nil || !strings.Contains(err.Error(), "consumer.batch") {
		t.Errorf("GATEWAY_CONSUMER_BATCH=0: error = %v, want one naming consumer.batch", err)
	}
}

func equal(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs := b.([]string)
		return strings.Join(as, ",") == strings.Join(bs, ",")
	}
	return a == b
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("GATEWAY_REDIS_ADDRS", "10.0.0.1:6379,10.0.0.2:6379")
	t.Setenv("GATEWAY_REDIS_PASSWORD", "s3cret")
	t.Setenv("GATEWAY_CONSUMER_BATCH", "7")
	t.Setenv("GATEWAY_CONSUMER_CLAIM_IDLE", "1m")
	t.Setenv("GATEWAY_DISPATCH_MAX_CONNS_PER_HOST", "8")
	t.Setenv("GATEWAY_CONSUMER_RETENTION", "acked")
	t.Setenv("GATEWAY_CONSUMER_RETENTION_KEEP", "1h")
	t.Setenv("GATEWAY_CONSUMER_DLQ_MAXLEN", "5000")
	c, err := Load(write(t, "consumer: {streams: [orders], batch: 100}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Redis.Addrs) != 2 || !c.Redis.Cluster {
		t.Errorf("redis.addrs = %v cluster=%v, want 2 addrs and cluster", c.Redis.Addrs, c.Redis.Cluster)
	}
	if c.Consumer.Retention != "acked" || c.Consumer.RetentionKeep != time.Hour || c.Consumer.DLQMaxLen != 5000 {
		t.Errorf("retention env overrides not applied: %+v", c.Consumer)
	}
	if c.Redis.Password != "s3cret" || c.Consumer.Batch != 7 || c.Consumer.ClaimIdle != time.Minute || c.Dispatch.MaxConnsPerHost != 8 {
		t.Errorf("env overrides not applied: %+v", c)
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		name, body, key string
	}{
		{"no streams", "consumer: {streams: []}\n", "consumer.streams"},
		{"negative batch", "consumer: {streams: [a], batch: -1}\n", "consumer.batch"},
		{"bad duration", "consumer: {streams: [a], claim_idle: soon}\n", "claim_idle"},
		{"unknown key", "consumer: {streams: [a], bacth: 5}\n", "bacth"},
		{"bad algorithm", "consumer: {streams: [a]}\nbalancer: {algorithm: fastest}\n", "balancer.algorithm"},
		{"bad log level", "consumer: {streams: [a]}\nlog: {level: loud}\n", "log.level"},
		{"dlq is consumed", "consumer: {streams: [gateway:dlq]}\n", "consumer.streams"},
		{"timeout vs claim idle", "consumer: {streams: [a], claim_idle: 2s}\ndispatch: {timeout: 5s}\n", "dispatch.timeout"},
		{"bad addr", "redis: {addrs: [localhost]}\nconsumer: {streams: [a]}\n", "redis.addrs"},
		{"cert without key", "redis: {tls: true, tls_cert_file: c.pem}\nconsumer: {streams: [a]}\n", "redis.tls_cert_file"},
		{"bad bool", "consumer: {streams: [a]}\nredis: {tls: sometimes}\n", "tls"},
		// The pipelining key went with the hand-written pool: a config
		// still setting it is told so instead of silently ignored.
		{"removed dispatch.pipelining", "consumer: {streams: [a]}\ndispatch: {pipelining: false}\n", "pipelining"},
		{"bad retention", "consumer: {streams: [a], retention: always}\n", "consumer.retention"},
		{"negative keep", "consumer: {streams: [a], retention: acked, retention_keep: -1s}\n", "consumer.retention_keep"},
		{"bad keep", "consumer: {streams: [a], retention_keep: forever}\n", "retention_keep"},
		{"negative interval", "consumer: {streams: [a], retention_interval: -5s}\n", "consumer.retention_interval"},
		{"negative dlq maxlen", "consumer: {streams: [a], dlq_maxlen: -1}\n", "consumer.dlq_maxlen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(write(t, c.body))
			if err == nil || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("Load(%q) error = %v, want one naming %s", c.body, err, c.key)
			}
		})
	}
}

// TestRetentionOffUnquoted: YAML 1.1 reads a bare off as false; the key
// must still mean "off".
func TestRetentionOffUnquoted(t *testing.T) {
	for _, v := range []string{"off", `"off"`, "acked", "ACKED"} {
		c, err := Load(write(t, "consumer: {streams: [a], retention: "+v+"}\n"))
		if err != nil {
			t.Fatalf("retention: %s: %v", v, err)
		}
		want := strings.ToLower(strings.Trim(v, `"`))
		if c.Consumer.Retention != want {
			t.Errorf("retention: %s = %q, want %q", v, c.Consumer.Retention, want)
		}
	}
}

func TestKeyErrorIsInspectable(t *testing.T) {
	_, err := Load(write(t, "consumer: {streams: [a], max_inflight: 0}\n"))
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "consumer.max_inflight" {
		t.Fatalf("error %v: want a *KeyError for consumer.max_inflight", err)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestServiceLimitsFromEnv(t *testing.T) {
	t.Setenv("GATEWAY_CONSUMER_SERVICE_LIMITS", "orders=10, payments = 20")
	c, err := Load(write(t, "consumer: {streams: [a], service_limits: {legacy: 3}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Consumer.ServiceLimits) != 2 || c.Consumer.ServiceLimits["orders"] != 10 || c.Consumer.ServiceLimits["payments"] != 20 {
		t.Errorf("consumer.service_limits = %v, want map[orders:10 payments:20] (env replaces the file's map)", c.Consumer.ServiceLimits)
	}
	for _, bad := range []string{"orders", "orders=ten", "=3", "orders=0"} {
		t.Run(bad, func(t *testing.T) {
			t.Setenv("GATEWAY_CONSUMER_SERVICE_LIMITS", bad)
			_, err := Load(write(t, "consumer: {streams: [a]}\n"))
			if err == nil || !strings.Contains(err.Error(), "service_limits") {
				t.Fatalf("GATEWAY_CONSUMER_SERVICE_LIMITS=%q: error = %v, want one naming service_limits", bad, err)
			}
			t.Log(err)
		})
	}
}
