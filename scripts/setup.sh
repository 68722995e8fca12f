#!/usr/bin/env bash
# Installs what the gateway's demo and tests need, and only what is missing:
#   - redis-server and redis-cli, chromium (headless, for the status page's
#     browser tests) and promtool (package prometheus, for the alert rule
#     tests) from Debian's packages;
#   - a Consul agent (v1.14.11, the last open-source line served here), built
#     from source through the wrapper module in tools/consul into .tools/bin.
# Safe to run repeatedly; a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages, each installed only when its command is missing:
#   redis-server, redis-cli  redis-server
#   chromium                 chromium (the status page's browser tests)
#   promtool                 prometheus (alert rule unit tests)
pkgs=()
{ command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || pkgs+=(redis-server)
[ -x /usr/bin/chromium ] || pkgs+=(chromium)
command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
if [ ${#pkgs[@]} -gt 0 ]; then
  log "installing ${pkgs[*]} (Debian packages)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${pkgs[@]}" >/dev/null
  # The redis-server and prometheus packages start system services where an
  # init system exists; the gateway's tests and demo start their own
  # servers on other ports and need none.
fi

consul_bin=.tools/bin/consul
if [ ! -x "$consul_bin" ]; then
  log "building consul v1.14.11 into $consul_bin (takes a few minutes once)"
  mkdir -p .tools/bin
  (cd tools/consul && go build -o ../../$consul_bin github.com/hashicorp/consul)
fi

log "ok: $(redis-server --version | cut -d' ' -f1-3), consul $("$consul_bin" version | head -1), $(/usr/bin/chromium --version 2>/dev/null | cut -d' ' -f1-2), $(promtool --version 2>&1 | head -1 | cut -d' ' -f1-3)"
