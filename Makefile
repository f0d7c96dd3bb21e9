# osgate — the two commands that matter: `make run` and `make test`.
GO      ?= go
BIN     := bin/osgate
ifndef VERSION
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
# BUILD_TIME: the clock of a gateway is never restored to before it.
ifndef BUILD_TIME
BUILD_TIME := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
endif
LDFLAGS := -X github.com/osgate/osgate/appliance.Version=$(VERSION) -X github.com/osgate/osgate/appliance.BuildTime=$(BUILD_TIME)
# image/build.sh stamps the same into the images' osgate.
export VERSION BUILD_TIME
CONFIG  ?=

.PHONY: run test build bench lint fuzz deps test-deps clean

## run: install Mosquitto if missing, build, start the managed broker and the
## gateway on its embedded default config (or CONFIG=osgate.json).
run: deps build
	./$(BIN) run $(if $(CONFIG),-c $(CONFIG))

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./appliance/cmd/osgate

## test: install the real peers the tests start, lint, then every test
## (fuzz tests run their seed corpus). The tag testhook builds the test-only
## connector (drivers/testhook) and its tests; release builds leave it out.
TEST_TAGS := testhook
test: test-deps lint
	$(GO) test -tags $(TEST_TAGS) -count=1 -timeout 40m ./...

## lint: gofmt, go vet and staticcheck (pinned in go.mod as a tool), with
## and without the build tags the project uses; any finding fails.
LINT_TAGS := "" vmtest containertest testhook
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for t in $(LINT_TAGS); do \
	  echo "go vet -tags '$$t'"; $(GO) vet -tags "$$t" ./... || exit 1; \
	  echo "staticcheck -tags '$$t'"; $(GO) tool staticcheck -tags "$$t" ./... || exit 1; \
	done

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

# image ----------------------------------------------------------------------
# The appliance images (image/README.md). Not part of `make test`: they need
# qemu, mtools and a cross compiler, which image/deps.sh installs.
IMAGE_BUILD := image/build
AMD64_IMG   := $(IMAGE_BUILD)/osgate-amd64.img
RPI_IMG     := $(IMAGE_BUILD)/osgate-rpi.img

.PHONY: image image-amd64 image-deps mosquitto-static vm-test image-test vm-test-ota release

image-deps:
	@image/deps.sh

## mosquitto-static: static Mosquitto (TLS) for the images' architectures
## (armhf: the container image's linux/arm/v7), from Debian's source package.
mosquitto-static: image-deps
	image/mosquitto/build.sh amd64 arm64 armhf

$(IMAGE_BUILD)/mosquitto.%: | image-deps
	image/mosquitto/build.sh $*

## image: the Raspberry Pi SD card image (arm64), $(RPI_IMG).
image: $(IMAGE_BUILD)/mosquitto.arm64 | image-deps
	image/build.sh rpi $(RPI_IMG)

## image-amd64: the amd64 test image, $(AMD64_IMG).
image-amd64: $(IMAGE_BUILD)/mosquitto.amd64 | image-deps
	image/build.sh amd64 $(AMD64_IMG)

## vm-test: boot the amd64 image in qemu (TCG) and test it from the host.
vm-test: image-amd64
	OSGATE_VM_IMAGE=$(abspath $(AMD64_IMG)) $(GO) test -tags vmtest -run '^TestVM$$' -count=1 -v -timeout 30m ./image/vmtest

## image-test: build the Raspberry Pi image, check the file (the version
## stamped into its osgate is $(VERSION)), then boot it under qemu's
## raspi3b (TCG) with a bootstrap config and no time server, and test it
## from the host.
image-test: image
	OSGATE_RPI_IMAGE=$(abspath $(RPI_IMG)) OSGATE_VERSION=$(VERSION) $(GO) test -tags vmtest -run '^(TestRPiImage|TestRPiBoot)$$' -count=1 -v -timeout 30m ./image/vmtest

## release: the Raspberry Pi OTA release of $(VERSION) (the version the
## image's osgate carries), signed with RELEASE_KEY (osgate release keygen),
## in $(IMAGE_BUILD)/releases/$(VERSION); see ota/README.md.
CHANNEL ?= stable
release: build $(IMAGE_BUILD)/mosquitto.arm64 | image-deps
	@[ -n "$(RELEASE_KEY)" ] || { echo "make release needs RELEASE_KEY=FILE (make one with: bin/osgate release keygen FILE)"; exit 2; }
	image/build.sh rpi $(IMAGE_BUILD)/osgate-rpi-$(VERSION).gaf
	./$(BIN) release build -key $(RELEASE_KEY) -version $(VERSION) -channel $(CHANNEL) \
	  -out $(IMAGE_BUILD)/releases/$(VERSION) $(IMAGE_BUILD)/osgate-rpi-$(VERSION).gaf

## vm-test-ota: the OTA updates shown in qemu: builds v1, v2 and an
## unhealthy v3 with a test release key and a per-device update password
## (under $(IMAGE_BUILD)/ota-vmtest), serves the releases with nginx and
## updates, confirms and rolls back the VM.
vm-test-ota: $(IMAGE_BUILD)/mosquitto.amd64 | image-deps
	OSGATE_OTA_WORK=$(abspath $(IMAGE_BUILD)/ota-vmtest) $(GO) test -tags vmtest -run '^TestOTA$$' -count=1 -v -timeout 60m ./image/vmtest

# container -------------------------------------------------------------------
# The container image (image/container, README "Run it in Docker"): built and
# tested with Podman on its own storage; no Docker daemon needed.
.PHONY: container container-deps container-test

container-deps:
	@image/container/deps.sh

## container: the FROM-scratch image for linux/amd64, linux/arm64 and
## linux/arm/v7, as a manifest list in Podman, one docker-archive per
## architecture (docker load -i FILE) and an OCI archive of all three, in
## $(IMAGE_BUILD)/container.
container: $(IMAGE_BUILD)/mosquitto.amd64 $(IMAGE_BUILD)/mosquitto.arm64 $(IMAGE_BUILD)/mosquitto.armhf | image-deps container-deps
	image/container/build.sh

## container-test: build the image, load its amd64 archive into Podman and
## test it from the host (telemetry, a mounted config, the queue kept in the
## volume across a restart, health, stop) and the arm images' binaries.
container-test: container test-deps
	OSGATE_CONTAINER_DIR=$(abspath $(IMAGE_BUILD)/container) OSGATE_VERSION=$(VERSION) $(GO) test -tags containertest -count=1 -v -timeout 20m ./image/containertest
