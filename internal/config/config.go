// Package config loads the gateway's configuration file with viper, applies
// GATEWAY_<SECTION>_<KEY> environment overrides, fills defaults and validates
// every key in one place. It is the only package that imports viper.
package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Config is the whole gateway configuration. The zero value is not valid;
// use Load, which fills the defaults documented on each field.
type Config struct {
	Redis    Redis    `mapstructure:"redis"`
	Consumer Consumer `mapstructure:"consumer"`
	Consul   Consul   `mapstructure:"consul"`
	Rules    Rules    `mapstructure:"rules"`
	Admin    Admin    `mapstructure:"admin"`
	Log      Log      `mapstructure:"log"`
	Balancer Balancer `mapstructure:"balancer"`
	Dispatch Dispatch `mapstructure:"dispatch"`
}

// Redis says how to reach Redis. Several addrs, or Cluster, mean Redis Cluster.
type Redis struct {
	Addrs    []string `mapstructure:"addrs"`    // default [127.0.0.1:6379]
	Cluster  bool     `mapstructure:"cluster"`  // default false; implied by len(Addrs) > 1
	Username string   `mapstructure:"username"` // ACL user; default none
	Password string   `mapstructure:"password"` // default none; prefer GATEWAY_REDIS_PASSWORD
	DB       int      `mapstructure:"db"`       // default 0; must be 0 with Cluster
	TLS      bool     `mapstructure:"tls"`      // default false
	// TLS options, used when TLS is true.
	TLSCAFile             string `mapstructure:"tls_ca_file"`
	TLSCertFile           string `mapstructure:"tls_cert_file"`
	TLSKeyFile            string `mapstructure:"tls_key_file"`
	TLSServerName         string `mapstructure:"tls_server_name"`
	TLSInsecureSkipVerify bool   `mapstructure:"tls_insecure_skip_verify"`
}

// Consumer configures how streams are read and when messages give up.
type Consumer struct {
	Streams       []string      `mapstructure:"streams"`        // required
	Group         string        `mapstructure:"group"`          // default "gateway"
	Name          string        `mapstructure:"name"`           // default: hostname
	Batch         int           `mapstructure:"batch"`          // entries per XREADGROUP; default 128
	Block         time.Duration `mapstructure:"block"`          // XREADGROUP block; default 1s
	ClaimIdle     time.Duration `mapstructure:"claim_idle"`     // XAUTOCLAIM min idle; default 30s
	ClaimInterval time.Duration `mapstructure:"claim_interval"` // how often to XAUTOCLAIM; default claim_idle/4
	MaxDeliveries int           `mapstructure:"max_deliveries"` // then DLQ; default 5
	MaxInflight   int           `mapstructure:"max_inflight"`   // messages in flight; default 1024
	// ServiceConcurrency caps requests in flight per target service, so one
	// slow service cannot take every slot; default 64. 0 keeps the default.
	ServiceConcurrency int `mapstructure:"service_concurrency"`
	// ServiceLimits overrides ServiceConcurrency per service name,
	// e.g. {legacy-billing: 8}. Default none.
	ServiceLimits   map[string]int `mapstructure:"service_limits"`
	DLQStream       string         `mapstructure:"dlq_stream"`        // default "gateway:dlq"
	MaxPayloadBytes int            `mapstructure:"max_payload_bytes"` // default 1 MiB; larger -> DLQ bad_message
	ReplyMaxLen     int64          `mapstructure:"reply_maxlen"`      // approximate MAXLEN of reply streams; default 10000
}

// Consul says where discovery asks for instances.
type Consul struct {
	Address    string `mapstructure:"address"`    // default 127.0.0.1:8500
	Token      string `mapstructure:"token"`      // ACL token; prefer GATEWAY_CONSUL_TOKEN
	Datacenter string `mapstructure:"datacenter"` // default: the agent's
	Scheme     string `mapstructure:"scheme"`     // http (default) or https
	TLSCAFile  string `mapstructure:"tls_ca_file"`
	TLSCert    string `mapstructure:"tls_cert_file"`
	TLSKey     string `mapstructure:"tls_key_file"`
	// TLSInsecureSkipVerify disables certificate checks; for tests only.
	TLSInsecureSkipVerify bool `mapstructure:"tls_insecure_skip_verify"`
	// Subscriptions enables routes declared by instances in their service
	// meta (gateway-sub-NAME). Default true.
	Subscriptions bool `mapstructure:"subscriptions"`
	// SubscriptionStreams is the allow-list of streams a declaration may
	// read. Default empty: every stream in consumer.streams.
	SubscriptionStreams []string `mapstructure:"subscription_streams"`
}

// Rules says where the rule files are.
type Rules struct {
	Path string `mapstructure:"path"` // file or directory; default configs/rules.yaml
}

// Admin configures the admin HTTP server.
type Admin struct {
	Listen string `mapstructure:"listen"` // default 127.0.0.1:9595
	Token  string `mapstructure:"token"`  // bearer token; empty = no auth
}

// Log configures slog.
type Log struct {
	Level  string `mapstructure:"level"`  // debug|info|warn|error; default info
	Format string `mapstructure:"format"` // text|json; default text
}

// Balancer picks the instance selection policy.
type Balancer struct {
	Algorithm string `mapstructure:"algorithm"` // peak_ewma (default)|least_pending|round_robin|random
}

// Dispatch configures the HTTP client.
type Dispatch struct {
	Timeout         time.Duration `mapstructure:"timeout"`            // per attempt when the route has none; default 5s
	MaxConnsPerHost int           `mapstructure:"max_conns_per_host"` // default 32
	// Pipelining sends requests beyond max_conns_per_host on busy
	// connections (HTTP/1.1 pipelining); false makes them wait for a free
	// one instead. Default true.
	Pipelining bool `mapstructure:"pipelining"`
}

func defaults(v *viper.Viper) {
	host, _ := os.Hostname()
	set := map[string]any{
		"redis.addrs": []string{"127.0.0.1:6379"}, "redis.cluster": false, "redis.username": "",
		"redis.password": "", "redis.db": 0, "redis.tls": false, "redis.tls_ca_file": "",
		"redis.tls_cert_file": "", "redis.tls_key_file": "", "redis.tls_server_name": "",
		"redis.tls_insecure_skip_verify": false,
		"consumer.streams":               []string{}, "consumer.group": "gateway", "consumer.name": host,
		"consumer.batch": 128, "consumer.block": time.Second, "consumer.claim_idle": 30 * time.Second,
		"consumer.claim_interval": time.Duration(0), "consumer.max_deliveries": 5,
		"consumer.max_inflight": 1024, "consumer.service_concurrency": 64,
		"consumer.service_limits": map[string]int{},
		"consumer.dlq_stream":     "gateway:dlq", "consumer.max_payload_bytes": 1 << 20,
		"consumer.reply_maxlen": 10000,
		"consul.address":        "127.0.0.1:8500", "consul.token": "", "consul.datacenter": "",
		"consul.scheme": "http", "consul.tls_ca_file": "", "consul.tls_cert_file": "",
		"consul.tls_key_file": "", "consul.tls_insecure_skip_verify": false,
		"consul.subscriptions": true, "consul.subscription_streams": []string{},
		"rules.path":   "configs/rules.yaml",
		"admin.listen": "127.0.0.1:9595", "admin.token": "",
		"log.level": "info", "log.format": "text",
		"balancer.algorithm": "peak_ewma",
		"dispatch.timeout":   5 * time.Second, "dispatch.max_conns_per_host": 32,
		"dispatch.pipelining": true,
	}
	for k, val := range set {
		v.SetDefault(k, val)
	}
}

// Load reads file (YAML) if non-empty, applies GATEWAY_* environment
// overrides, fills defaults and validates. Errors name the offending key.
func Load(file string) (*Config, error) {
	v := viper.New()
	defaults(v)
	v.SetEnvPrefix("GATEWAY")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
	}
	var c Config
	hooks := mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)
	if err := v.UnmarshalExact(&c, viper.DecodeHook(hooks)); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	return &c, nil
}

// KeyError is a validation failure of one configuration key.
type KeyError struct {
	Key    string
	Reason string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Reason }

func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	c.Redis.Addrs = compact(c.Redis.Addrs)
	if len(c.Redis.Addrs) == 0 {
		bad("redis.addrs", "at least one address is required")
	}
	for _, a := range c.Redis.Addrs {
		if !strings.Contains(a, ":") {
			bad("redis.addrs", "%q is not host:port", a)
		}
	}
	if len(c.Redis.Addrs) > 1 {
		c.Redis.Cluster = true
	}
	if c.Redis.Cluster && c.Redis.DB != 0 {
		bad("redis.db", "must be 0 with Redis Cluster")
	}
	if (c.Redis.TLSCertFile == "") != (c.Redis.TLSKeyFile == "") {
		bad("redis.tls_cert_file", "tls_cert_file and tls_key_file go together")
	}
	cs := &c.Consumer
	cs.Streams = compact(cs.Streams)
	if len(cs.Streams) == 0 {
		bad("consumer.streams", "at least one stream is required")
	}
	seen := map[string]bool{}
	for _, s := range cs.Streams {
		if seen[s] {
			bad("consumer.streams", "stream %q listed twice", s)
		}
		seen[s] = true
		if s == cs.DLQStream {
			bad("consumer.streams", "stream %q is the dead-letter stream", s)
		}
	}
	if cs.Group == "" {
		bad("consumer.group", "must not be empty")
	}
	if cs.Name == "" {
		bad("consumer.name", "must not be empty (hostname unknown)")
	}
	positive := []struct {
		key string
		n   int
	}{
		{"consumer.batch", cs.Batch}, {"consumer.max_deliveries", cs.MaxDeliveries},
		{"consumer.max_inflight", cs.MaxInflight}, {"consumer.service_concurrency", cs.ServiceConcurrency},
		{"consumer.max_payload_bytes", cs.MaxPayloadBytes}, {"dispatch.max_conns_per_host", c.Dispatch.MaxConnsPerHost},
	}
	for _, p := range positive {
		if p.n <= 0 {
			bad(p.key, "must be > 0 (got %d)", p.n)
		}
	}
	for svc, n := range cs.ServiceLimits {
		if n <= 0 {
			bad("consumer.service_limits."+svc, "must be > 0 (got %d)", n)
		}
	}
	if cs.Block <= 0 {
		bad("consumer.block", "must be > 0 (got %s)", cs.Block)
	}
	if cs.ClaimIdle < time.Second {
		bad("consumer.claim_idle", "must be at least 1s (got %s)", cs.ClaimIdle)
	}
	if cs.ClaimInterval < 0 {
		bad("consumer.claim_interval", "must not be negative")
	}
	if cs.ClaimInterval == 0 {
		cs.ClaimInterval = cs.ClaimIdle / 4
	}
	if cs.DLQStream == "" {
		bad("consumer.dlq_stream", "must not be empty")
	}
	if c.Dispatch.Timeout <= 0 {
		bad("dispatch.timeout", "must be > 0 (got %s)", c.Dispatch.Timeout)
	}
	if c.Dispatch.Timeout >= cs.ClaimIdle/2 {
		// A message still being dispatched must not look idle to XAUTOCLAIM.
		bad("dispatch.timeout", "must be less than half of consumer.claim_idle (%s)", cs.ClaimIdle)
	}
	if c.Consul.Address == "" {
		bad("consul.address", "must not be empty")
	}
	if c.Consul.Scheme != "http" && c.Consul.Scheme != "https" {
		bad("consul.scheme", "must be http or https (got %q)", c.Consul.Scheme)
	}
	c.Consul.SubscriptionStreams = compact(c.Consul.SubscriptionStreams)
	for _, s := range c.Consul.SubscriptionStreams {
		if !slices.Contains(cs.Streams, s) {
			bad("consul.subscription_streams", "stream %q is not in consumer.streams", s)
		}
	}
	if len(c.Consul.SubscriptionStreams) == 0 {
		c.Consul.SubscriptionStreams = slices.Clone(cs.Streams)
	}
	if c.Rules.Path == "" {
		bad("rules.path", "must not be empty")
	}
	if c.Admin.Listen == "" {
		bad("admin.listen", "must not be empty")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json (got %q)", c.Log.Format)
	}
	switch c.Balancer.Algorithm {
	case "peak_ewma", "least_pending", "round_robin", "random":
	default:
		bad("balancer.algorithm", "must be peak_ewma, least_pending, round_robin or random (got %q)", c.Balancer.Algorithm)
	}
	return errors.Join(errs...)
}

func compact(in []string) []string {
	out := in[:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
