# osgate — the two commands that matter: `make run` and `make test`.
GO      ?= go
BIN     := bin/osgate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/osgate/osgate/appliance.Version=$(VERSION)
CONFIG  ?=

.PHONY: run test build bench vet fuzz deps test-deps clean

## run: install Mosquitto if missing, build, start the managed broker and the
## gateway on its embedded default config (or CONFIG=osgate.json).
run: deps build
	./$(BIN) run $(if $(CONFIG),-c $(CONFIG))

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./appliance/cmd/osgate

## test: install the real peers the tests start, vet, then every test
## (fuzz tests run their seed corpus).
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...

## bench: every benchmark of the project; figures go to docs/benchmarks.md.
bench: test-deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

## fuzz: a short run of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

deps:
	@scripts/install-deps.sh run

test-deps:
	@scripts/install-deps.sh test

clean:
	rm -rf bin state
