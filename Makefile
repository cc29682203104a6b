# make with no target prints help.
.DEFAULT_GOAL := help
.PHONY: help dev test build bench bench-e2e fmt vet

help: ## this help
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

dev: ## run the service on dev defaults with a demo signed payment (scripts/dev.sh)
	bash scripts/dev.sh

test: ## run vet and the whole test suite against real PostgreSQL and Redis (scripts/test.sh)
	bash scripts/test.sh

build: ## build bin/quill and bin/quillctl
	go build -o bin/ ./cmd/quill ./cmd/quillctl

bench: ## run the Go benchmarks
	bash scripts/bench.sh

bench-e2e: ## end-to-end load, scheme A and B legs and the --max-batch 1 baseline, one table (scripts/bench-e2e.sh; SCENARIO=hot|spread|verify-only|mixed|idle)
	bash scripts/bench-e2e.sh $(or $(SCENARIO),hot)

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

vet: ## go vet
	go vet ./...
