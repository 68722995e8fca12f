# The two commands of the README:
#   make demo  - local Redis + Consul dev agent, demo services, the gateway
#                with configs/, sample traffic; Ctrl-C stops everything.
#   make test  - go vet, then every test (unit + integration against real
#                redis-server and consul agents started by the tests).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: all setup build test test-short demo bench fuzz lint clean screenshot

all: build

setup:
	@scripts/setup.sh

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/gateway ./cmd/gateway
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demoservice ./cmd/demoservice
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demoproducer ./cmd/demoproducer

test: setup
	$(GO) vet ./...
	$(GO) run ./cmd/gateway check configs/rules.yaml
	$(GO) run ./cmd/gateway test configs/rules_test.yaml
	$(GO) test -race -count=1 -timeout 20m ./...

demo: setup build
	@scripts/demo.sh

# docs/status.png (README): the status page in headless Chromium, taken by
# TestStatusPageLive against a real gateway, Redis, Consul and services.
screenshot: setup
	@mkdir -p docs
	GATEWAY_SCREENSHOT=$(CURDIR)/docs/status.png $(GO) test -count=1 -run '^TestStatusPageLive$$' ./cmd/gateway

bench: setup build
	$(GO) run ./bench -scenario all

# FUZZTIME=5m make fuzz
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./rules -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz FuzzNewMessage -fuzztime $(FUZZTIME)

clean:
	rm -rf bin .demo
