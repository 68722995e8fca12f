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
		{"redis.addrs", c.Redis.Addrs, []string{"127.0.0.1:6379"}},
		{"consumer.group", c.Consumer.Group, "gateway"},
		{"consumer.batch", c.Consumer.Batch, 128},
		{"consumer.claim_idle", c.Consumer.ClaimIdle, 30 * time.Second},
		{"consumer.claim_interval", c.Consumer.ClaimInterval, 7500 * time.Millisecond},
		{"consumer.dlq_stream", c.Consumer.DLQStream, "gateway:dlq"},
		{"consumer.max_payload_bytes", c.Consumer.MaxPayloadBytes, 1 << 20},
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9595"},
		{"balancer.algorithm", c.Balancer.Algorithm, "peak_ewma"},
		{"dispatch.max_conns_per_host", c.Dispatch.MaxConnsPerHost, 32},
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
	c, err := Load(write(t, "consumer: {streams: [orders], batch: 100}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Redis.Addrs) != 2 || !c.Redis.Cluster {
		t.Errorf("redis.addrs = %v cluster=%v, want 2 addrs and cluster", c.Redis.Addrs, c.Redis.Cluster)
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
