# Chaser — the two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     ?= bin
DATA    ?= ./data
FUZZTIME ?= 30s
SHARED  ?= ../shared/data

.PHONY: build run test test-race lint fmt bench fuzz loadtest loadtest-full overload eval-recommender clean

build:
	$(GO) build -o $(BIN)/chaser ./cmd/chaser
	@if [ -d cmd/chaser-load ] && ls cmd/chaser-load/*.go >/dev/null 2>&1; then $(GO) build -o $(BIN)/chaser-load ./cmd/chaser-load; fi

# Run Chaser on its embedded defaults with demo data (public :8080, admin :8081).
run: build
	$(BIN)/chaser serve --demo --data-dir $(DATA)

# All tests: vet, formatting, then every package under the race detector
# (fuzz seed corpora run as ordinary tests).
test: lint
	$(GO) test -race -p 2 -count=1 ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	$(GO) test -run '^$$' -bench . -benchmem -p 1 ./...

# Run every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Offline recommender evaluation on the public data sets (see ../shared/data/PROVENANCE.md).
eval-recommender: build
	$(BIN)/chaser eval-recommender --data $(SHARED)

loadtest: build
	bash scripts/loadtest-demo.sh

# The bid path under the realistic mix (BENCHMARKS.md "Realistic mix setup"): the demo server on a
# fresh data dir, `chaser-load --prepare $(PREP_FLAGS)` (50 list audiences of 1 M uids, 20 campaigns
# with budgets no run exhausts; the demo campaign paused), a SETTLE (default 20) s wait while the server
# compacts the 1.4 GB it just wrote, then the checked load run with $(LOAD_FLAGS), e.g.
#   make loadtest-full LOAD_FLAGS="--baseline --qps 0 --duration 20s --no-notices"
#   make loadtest-full PREP_FLAGS="--prep-members 100000" LOAD_FLAGS="--qps 0 --duration 20s"
PREP_FLAGS ?=
LOAD_FLAGS ?=
loadtest-full: build
	PREPARE=1 PREP_FLAGS="$(PREP_FLAGS)" bash scripts/loadtest-demo.sh $(LOAD_FLAGS)

# Overload (RELIABILITY.md, BENCHMARKS.md "Overload"): the demo server with an in-flight limit of
# OVERLOAD_INFLIGHT, then chaser-load's checked step run: a 3 s closed-loop probe finds the
# sustainable rate, then 0.5× for 5 s, 2.5× for 10 s on 256 connections, 0.5× for 5 s (< 60 s).
OVERLOAD_INFLIGHT ?= 32
OVERLOAD_FLAGS ?=
overload: build
	QPS= DURATION= CHASER_MAX_INFLIGHT=$(OVERLOAD_INFLIGHT) ADMIN_ADDR=127.0.0.1:18081 bash scripts/loadtest-demo.sh \
	  --overload --overload-connections 256 --metrics-url http://127.0.0.1:18081/metrics $(OVERLOAD_FLAGS)

clean:
	rm -rf $(BIN)
