# Everyday commands. Each target is one command line you can also type by
# hand; CI runs .ci/run, which runs some of these.

GO        ?= go
TESTFLAGS ?= -race -count=1 -timeout 12m
FUZZTIME  ?= 60s
DEMO_DATA ?= ./data/demo

.PHONY: run test generate tools check-gen bench soak fuzz lint ci

## run: serve a demo store on :8080 (REST) and :9090 (gRPC)
run:
	$(GO) run ./cmd/ledgerfeed serve --demo --data $(DEMO_DATA)

## test: every test, with the race detector
test:
	$(GO) test $(TESTFLAGS) ./...

## generate: regenerate gen/ from proto/ (offline, pinned local plugins)
generate:
	scripts/generate.sh

## tools: install the pinned code generation tools into $(go env GOPATH)/bin
tools:
	scripts/tools.sh

## check-gen: fail when gen/ is not what proto/ generates
check-gen:
	scripts/check-gen.sh

## bench: ingest ratios against a bare bbolt loop, interleaved, with benchstat,
## then the 1 M-entry memory run (LEDGERFEED_BENCH_10M=1 for 10 M; see the script)
bench:
	scripts/bench.sh

## soak: the long soak and crash tests of the store (up to an hour)
soak:
	LEDGERFEED_SOAK=1 $(GO) test -count=1 -run 'Soak|Crash|Conformance' -timeout 60m -v ./ledger/ ./ledger/pgstore/

## fuzz: each fuzz target for FUZZTIME (none yet is not an error)
fuzz:
	@set -e; found=0; \
	for pkg in $$($(GO) list ./...); do \
		for fn in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			found=1; echo "== $$pkg $$fn"; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done; \
	if [ $$found = 0 ]; then echo "fuzz: no fuzz targets"; fi

## lint: gofmt (all but gen/) and go vet
lint:
	@out=$$(find . -name '*.go' -not -path './gen/*' -not -path './.git/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## ci: what CI runs
ci:
	bash .ci/run
