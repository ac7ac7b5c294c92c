# moat — `make demo` brings the whole system up on this machine;
# `make test` runs every test (as root it also runs the namespace, TUN and
# nftables tests, installing what they need with apt-get).

GO      ?= go
BIN     := bin
BINARIES := moat moat-node moat-coordinator
# Test timeout for the whole suite; CI allows 90 minutes, we aim far lower.
TEST_TIMEOUT ?= 20m

.PHONY: all build test bench lint demo clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))

test:
	@./scripts/deps.sh test
	$(GO) vet ./...
	./scripts/with-postgres.sh $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

bench:
	@./scripts/deps.sh bench
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./internal/meshbench/cmd/meshbench

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -version >/dev/null 2>&1; then \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...; \
	else echo "lint: staticcheck could not be fetched from the module proxy; skipped"; fi

# The whole system on this machine, no root needed: coordinator with its
# embedded IdP and SQLite in ./demo, a node serving a model, a signed-in
# device with its local endpoint. It prints what to try; Ctrl-C stops it.
demo:
	$(GO) run ./internal/demo

clean:
	rm -rf $(BIN)
