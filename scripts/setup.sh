#!/usr/bin/env bash
# Installs what the gateway's demo and tests need, and only what is missing:
#   - redis-server and redis-cli from Debian's packages;
#   - a Consul agent (v1.14.11, the last open-source line served here), built
#     from source through the wrapper module in tools/consul into .tools/bin.
# Safe to run repeatedly; a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  log "installing redis-server (Debian package)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server >/dev/null
  # The package starts a system instance where an init system exists; the
  # gateway's tests and demo start their own on other ports and need none.
fi

consul_bin=.tools/bin/consul
if [ ! -x "$consul_bin" ]; then
  log "building consul v1.14.11 into $consul_bin (takes a few minutes once)"
  mkdir -p .tools/bin
  (cd tools/consul && go build -o ../../$consul_bin github.com/hashicorp/consul)
fi

log "ok: $(redis-server --version | cut -d' ' -f1-3), consul $("$consul_bin" version | head -1)"
