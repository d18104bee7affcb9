# dexbridge: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
GO ?= go

.PHONY: help
help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## run the demo: nxsim, dexbridge (embedded NATS, local PostgreSQL), a demo key and a curl session
	@infra/scripts/run-local.sh

.PHONY: test
test: ## the full suite CI runs: go vet, every test against real NATS and PostgreSQL with the race detector, then brief fuzzing
	@infra/scripts/test.sh

.PHONY: test-short
test-short: ## the quick loop: go test -short (no race detector, no fuzzing, no process kills)
	@infra/scripts/test.sh short

.PHONY: build
build: ## build the binaries into bin/
	$(GO) build -o bin/ ./cmd/...

.PHONY: bench
bench: build ## the whole benchmark suite, one table (about 13 min on 2 cores); BENCH_ARGS="-scenarios identify,mix" picks some
	@if [ -z "$${DATABASE_URL:-}" ]; then infra/scripts/local-postgres.sh dexbench; fi
	@DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dexbench?sslmode=disable}" bin/dexbench -bin bin -json bin/bench.json $(BENCH_ARGS)

.PHONY: bench-docs
bench-docs: ## write the last `make bench` (bin/bench.json) into docs/benchmarks.md's table and README.md's figures line
	$(GO) run ./cmd/dexbench markdown -docs docs/benchmarks.md -readme README.md bin/bench.json

SOAK_DURATION ?= 3m
.PHONY: soak
soak: build ## the realistic mix against one dexbridge run for SOAK_DURATION (3m): fails if memory or goroutines grow or a request gets a 5xx
	@if [ -z "$${DATABASE_URL:-}" ]; then infra/scripts/local-postgres.sh dexbench; fi
	@DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/dexbench?sslmode=disable}" bin/dexbench soak -bin bin -duration $(SOAK_DURATION) $(SOAK_ARGS)

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: check
check: build ## validate the configuration and topics
	bin/dexbridge check

.PHONY: migrate
migrate: build ## apply the database migrations
	bin/dexbridge migrate

.PHONY: up
up: ## run the multi-container deployment (needs Docker)
	docker compose up --build

.PHONY: clean
clean: ## remove build output and local state
	rm -rf bin .data
