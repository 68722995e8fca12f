#!/usr/bin/env bash
# The main job, on one machine: a local Redis and Consul dev agent, demo
# services registered in Consul, the gateway with configs/, and sample
# traffic. Ctrl-C (or DEMO_DURATION seconds) stops everything it started.
#
# Ports (override with env): Redis 6390, Consul HTTP 8510, admin 9595, demo
# services from 9711 (SVC_PORT=9710: orders 9711-9712, payments 9721-9722,
# inventory 9731), so the demo can read the saga's counts.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT=${REDIS_PORT:-6390}
CONSUL_PORT=${CONSUL_PORT:-8510}
ADMIN=${ADMIN:-127.0.0.1:9595}
RATE=${RATE:-300}
SVC_PORT=${SVC_PORT:-9710}
DECLINE_ABOVE=${DECLINE_ABOVE:-1800}  # payments decline orders above this total (~10%)
DEMO_DURATION=${DEMO_DURATION:-0}   # seconds; 0 = until Ctrl-C
DIR=.demo
mkdir -p "$DIR"
rm -f "$DIR"/*.log
pids=()

cleanup() {
  trap - EXIT INT TERM
  echo
  echo "demo: stopping..."
  # Gateway and services first (they drain and deregister), then servers.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  echo "demo: stopped; logs are in $DIR/"
}
trap cleanup EXIT INT TERM

start() { # name, command...
  local name=$1; shift
  "$@" >"$DIR/$name.log" 2>&1 &
  pids+=($!)
}

wait_http() { # url, what
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "demo: $2 did not come up; see $DIR/" >&2
  exit 1
}

echo "demo: redis-server on 127.0.0.1:$REDIS_PORT"
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "demo: consul agent -dev on 127.0.0.1:$CONSUL_PORT"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
CHECKPOINT_DISABLE=1 start consul .tools/bin/consul agent -dev -bind 127.0.0.1 -client 127.0.0.1 \
  -http-port "$CONSUL_PORT" -server-port "$(free_port)" -serf-lan-port "$(free_port)" \
  -serf-wan-port "$(free_port)" -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -log-level warn
wait_http "http://127.0.0.1:$CONSUL_PORT/v1/status/leader" consul

echo "demo: services orders (x2, one tagged priority), payments (x2), inventory, audit"
svc() { start "$1" bin/demoservice -name "$2" -id "$1" -consul "127.0.0.1:$CONSUL_PORT" "${@:3}"; }
port() { echo "127.0.0.1:$((SVC_PORT + $1))"; }
svc orders-1 orders -tags priority -latency lognormal:2ms:10ms -shop -listen "$(port 1)"
svc orders-2 orders -latency lognormal:2ms:10ms -shop -listen "$(port 2)"
svc payments-1 payments -latency 3ms -shop -decline-above "$DECLINE_ABOVE" -listen "$(port 11)"
svc payments-2 payments -latency 3ms -weight 2 -shop -decline-above "$DECLINE_ABOVE" -listen "$(port 12)"
svc inventory-1 inventory -latency 1ms -shop -listen "$(port 21)"
# audit has no route in configs/rules.yaml: it declares its subscription in
# its own Consul registration (service meta gateway-sub-orders).
svc audit-1 audit -latency 1ms \
  -subscribe "orders={\"stream\":\"orders\",\"match\":\"headers.type startsWith 'order.'\",\"path\":\"/audit\"}"

export GATEWAY_REDIS_ADDRS=127.0.0.1:$REDIS_PORT
export GATEWAY_CONSUL_ADDRESS=127.0.0.1:$CONSUL_PORT
export GATEWAY_ADMIN_LISTEN=$ADMIN
export GATEWAY_CONSUMER_NAME=demo-gateway
echo "demo: gateway run --config configs/gateway.yaml"
start gateway bin/gateway run --config configs/gateway.yaml
wait_http "http://$ADMIN/readyz" gateway

echo "demo: subscriptions declared in Consul (GET /rules .subscriptions):"
for _ in $(seq 1 50); do
  subs=$(curl -fsS "http://$ADMIN/rules" | python3 -c 'import json,sys
for s in json.load(sys.stdin)["subscriptions"]:
    print("   %s  %s  instances=%s  %s" % (s["route"], s["state"], ",".join(s["instances"]), s["declaration"]))')
  [ -n "$subs" ] && break
  sleep 0.1
done
echo "${subs:-   (none yet)}"

echo "demo: producer at $RATE msg/s (orders, payments, events)"
start producer bin/demoproducer -redis "127.0.0.1:$REDIS_PORT" -rate "$RATE"

cat <<MSG

  The gateway is routing. Look at:
    http://$ADMIN/            live status page (open it in a browser)
    http://$ADMIN/metrics     Prometheus metrics (gateway_*)
    http://$ADMIN/rules       active rule set, per-route match counts, subscriptions
    http://$ADMIN/instances   instances, latency estimates, traffic share
    http://$ADMIN/readyz      readiness checks
    http://127.0.0.1:$CONSUL_PORT/ui   Consul UI
    tail -f $DIR/orders-1.log $DIR/audit-1.log   what each service receives
    redis-cli -p $REDIS_PORT xrange gateway:dlq - + COUNT 5   dead letters (no_route, schema)
    redis-cli -p $REDIS_PORT xrange replies:demo - + COUNT 5  request-reply answers
    redis-cli -p $REDIS_PORT xrange orders.compensate - + COUNT 5  saga failure events
    curl -s $(port 21)/inventory    the inventory's stock
  Place one order and see each saga step's outcome (a total above $DECLINE_ABOVE is declined):
    GATEWAY_REDIS_ADDRS=127.0.0.1:$REDIS_PORT bin/gateway request --stream orders --replies 6 \\
      --field type=order.created \\
      --payload '{"id":"o-1","total":1900,"region":"us","items":[{"sku":"sku-1","qty":2}]}'
  Edit configs/rules.yaml: it is reloaded within a second.  Ctrl-C stops everything.

MSG

acked() {
  curl -fsS "http://$ADMIN/metrics" 2>/dev/null |
    awk '/^gateway_messages_acked_total/ {s+=$2} END {printf "%d", s}'
}
# saga prints the order saga's counts, summed over the instances: payments
# declined, and the compensations their failure events triggered.
saga() {
  python3 - "$(port 1)" "$(port 2)" "$(port 11)" "$(port 12)" "$(port 21)" <<'PY'
import json, sys, urllib.request
def get(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=2) as r:
            return json.load(r)
    except Exception:
        return {}
o1, o2, p1, p2, inv = sys.argv[1:]
pay = [get(a, "/saga") for a in (p1, p2)]
cancelled = sum(get(a, "/saga").get("cancelled", 0) for a in (o1, o2))
i = get(inv, "/saga")
held = get(inv, "/inventory").get("held_orders", 0)
print(f"   saga: {i.get('reserved', 0)} reserved, {sum(p.get('charged', 0) for p in pay)} charged, "
      f"{sum(p.get('declined', 0) for p in pay)} declined -> compensated: {i.get('released', 0)} stock releases, "
      f"{cancelled} cancellations; {held} orders holding stock")
PY
}
start_ts=$(date +%s)
prev=$(acked)
while :; do
  sleep 5
  now=$(acked)
  printf 'demo: acked %s messages (%s msg/s over the last 5 s)\n' "$now" $(( (now - prev) / 5 ))
  for svc in orders-1 orders-2 payments-1 payments-2 inventory-1 audit-1; do
    printf '   %-11s received %s\n' "$svc" "$(grep -c 'msg_id\|received' "$DIR/$svc.log" 2>/dev/null || echo 0)"
  done
  printf '   dead letters: %s\n' "$(redis-cli -p "$REDIS_PORT" xlen gateway:dlq)"
  saga
  prev=$now
  if [ "$DEMO_DURATION" -gt 0 ] && [ $(( $(date +%s) - start_ts )) -ge "$DEMO_DURATION" ]; then
    break
  fi
done
