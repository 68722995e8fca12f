package config

import (
	"slices"
	"strings"
	"testing"
)

func TestSubscriptionKeys(t *testing.T) {
	c, err := Load(write(t, "consumer: {streams: [orders, payments]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// An empty allow-list means every consumed stream (derived in the wiring).
	if !c.Consul.Subscriptions || len(c.Consul.SubscriptionStreams) != 0 {
		t.Errorf("defaults: consul.subscriptions = %v, consul.subscription_streams = %v; want true and empty",
			c.Consul.Subscriptions, c.Consul.SubscriptionStreams)
	}
	c, err = Load(write(t, "consumer: {streams: [orders, payments]}\nconsul: {subscriptions: false, subscription_streams: [orders]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Consul.Subscriptions || !slices.Equal(c.Consul.SubscriptionStreams, []string{"orders"}) {
		t.Errorf("set: consul.subscriptions = %v, consul.subscription_streams = %v", c.Consul.Subscriptions, c.Consul.SubscriptionStreams)
	}
	_, err = Load(write(t, "consumer: {streams: [orders]}\nconsul: {subscription_streams: [orders, audit]}\n"))
	if err == nil || !strings.Contains(err.Error(), `consul.subscription_streams: stream "audit" is not in consumer.streams`) {
		t.Errorf("a stream the gateway does not consume: error %v", err)
	}
	t.Setenv("GATEWAY_CONSUL_SUBSCRIPTION_STREAMS", "payments")
	if c, err = Load(write(t, "consumer: {streams: [orders, payments]}\n")); err != nil || !slices.Equal(c.Consul.SubscriptionStreams, []string{"payments"}) {
		t.Errorf("env override: %v, %v", c, err)
	}
}
