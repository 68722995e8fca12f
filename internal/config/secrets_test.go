package config

import (
	"strings"
	"testing"
)

// TestConfigErrorsNeverEchoSecrets: whatever is wrong with the config, the
// error (printed at start, logged by supervisors) names the key but never
// contains a password or token, whether it came from the file or the env.
func TestConfigErrorsNeverEchoSecrets(t *testing.T) {
	const secret = "Sup3r-Secret-Value-42"
	cases := []struct {
		name string
		env  map[string]string
		file string
		key  string // the error must name it
	}{
		{"other key invalid, secrets from env",
			map[string]string{"GATEWAY_REDIS_PASSWORD": secret, "GATEWAY_CONSUL_TOKEN": secret, "GATEWAY_ADMIN_TOKEN": secret},
			"consumer: {streams: [orders]}\nlog: {level: loud}\n", "log.level"},
		{"other key invalid, secrets in file",
			nil,
			"consumer: {streams: [orders]}\nredis: {password: " + secret + ", username: u}\nconsul: {token: " + secret + ", scheme: ftp}\nadmin: {token: " + secret + "}\n", "consul.scheme"},
		{"password of the wrong type",
			nil,
			"consumer: {streams: [orders]}\nredis: {password: [" + secret + "]}\n", "password"},
		{"token of the wrong type",
			nil,
			"consumer: {streams: [orders]}\nconsul: {token: {x: " + secret + "}}\n", "token"},
		{"admin token of the wrong type",
			nil,
			"consumer: {streams: [orders]}\nadmin: {token: [" + secret + "]}\n", "token"},
		{"unknown key next to a secret",
			map[string]string{"GATEWAY_REDIS_PASSWORD": secret},
			"consumer: {streams: [orders]}\nredis: {pasword: " + secret + "}\n", "pasword"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load(write(t, tc.file))
			if err == nil {
				t.Fatal("Load: no error")
			}
			t.Logf("Load: %v", err)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Load error echoes the secret: %v", err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("Load error %q does not name %s", err, tc.key)
			}
		})
	}
}

// TestSecretsFromEnv: passwords and tokens can come from the environment
// only, so they need not be written in the config file.
func TestSecretsFromEnv(t *testing.T) {
	t.Setenv("GATEWAY_REDIS_USERNAME", "gw")
	t.Setenv("GATEWAY_REDIS_PASSWORD", "rp")
	t.Setenv("GATEWAY_REDIS_TLS", "true")
	t.Setenv("GATEWAY_REDIS_TLS_CA_FILE", "/ca.pem")
	t.Setenv("GATEWAY_CONSUL_TOKEN", "ct")
	t.Setenv("GATEWAY_ADMIN_TOKEN", "at")
	c, err := Load(write(t, "consumer: {streams: [orders]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Redis.Username, c.Redis.Password, c.Redis.TLSCAFile, c.Consul.Token, c.Admin.Token}
	want := []string{"gw", "rp", "/ca.pem", "ct", "at"}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !c.Redis.TLS {
		t.Error("redis.tls from env = false, want true")
	}
	if c.Admin.Listen != "" {
		// Unset: the admin server's own default applies, loopback
		// (health.TestAdminListensOnLoopbackByDefault).
		t.Errorf("admin.listen unset = %q, want empty (the admin server's default)", c.Admin.Listen)
	}
}
