# moat — `make demo` brings the whole system up on this machine;
# `make test` runs every test (as root it also runs the namespace, TUN and
# nftables tests, installing what they need with apt-get).

GO      ?= go
BIN     := bin
BINARIES := moat moat-node moat-coordinator
# The version --version prints; `make VERSION=v1.2.3` for a release.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/moatmesh/moat/internal/cli.version=$(VERSION)
# Test timeout for the whole suite; CI allows 90 minutes, we aim far lower.
TEST_TIMEOUT ?= 20m

.PHONY: all build test test-dex bench lint demo clean release images

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))

test:
	@./scripts/deps.sh test
	$(GO) vet ./...
	$(GO) mod tidy -diff
	# The Dex sign-in test runs here too once `make test-dex` has built Dex
	# into its cache (outside the repo); until then it skips and says so.
	./scripts/with-postgres.sh $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	# The Grafana dashboards: their own module, so the SDK stays out of go.mod.
	cd deploy/grafana && $(GO) vet ./... && $(GO) mod tidy -diff && $(GO) test -count=1 ./...
	# The Helm chart, against the Kubernetes API types in its own module;
	# helm is built once into a cache outside the repo (scripts/helm.sh).
	cd deploy/helm && $(GO) vet ./... && $(GO) mod tidy -diff && \
		MOAT_HELM="$$(../../scripts/helm.sh)" $(GO) test -count=1 ./...
	# The release signer (minisign), SBOM tool, Debian packages (nfpm) and
	# APT repository: their own module too (the APT test runs apt-get as root).
	cd internal/tools/release && $(GO) vet ./... && $(GO) mod tidy -diff && $(GO) test -count=1 ./...

# Sign-in through a real Dex (coordinator/dex_test.go). Dex is built once
# from its own module (internal/tools/dex) and cached outside the repo; a
# cold build takes 5-25 minutes on 2 cores (mostly the C of its SQLite
# driver), so it is a target of its own; once built, `make test` runs the
# test too.
test-dex:
	@dex=$$(./scripts/dex.sh) || { echo "test-dex: Dex could not be built; the Dex test will skip"; dex=; }; \
	MOAT_DEX="$$dex" $(GO) test -count=1 -run 'TestDex' -v ./coordinator/

# Every benchmark, then one table of figures against their targets
# (scripts/bench.sh; the whole output goes to artifacts/bench.log).
bench:
	@./scripts/deps.sh bench
	GO=$(GO) ./scripts/bench.sh

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

# release: every binary for every platform it ships on, an SBOM,
# SHA256SUMS signed with the offline release key (MOAT_RELEASE_KEY=path;
# without it a throwaway key, said loudly) with a manifest that expires
# (MOAT_RELEASE_VALID, default 90d), and the Debian packages in a signed
# APT repository (bin/release/apt); see scripts/release.sh and
# docs/release.md. Point `moat-coordinator serve --release-dir bin/release`
# at the result.
release:
	./scripts/release.sh $(BIN)/release $(VERSION)

# images: the moat-coordinator and moat-node container images, FROM
# scratch, built by the running Docker engine and saved as OCI archives in
# artifacts/ (scripts/images.sh; deploy/docker; needs skopeo).
images:
	./scripts/images.sh artifacts $(VERSION)

clean:
	rm -rf $(BIN)
