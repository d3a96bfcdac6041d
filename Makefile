# Gatehouse developer targets. `make run` needs no Redis (embedded miniredis).

FUZZTIME ?= 5s

# What `gatehouse version` prints: the nearest tag (or the commit), -dirty for
# uncommitted changes. Stamped with -ldflags because go's own VCS stamping
# misses git worktrees and builds without .git (the image's).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# podman where it is installed, else docker; CONTAINER=buildah works for image.
CONTAINER ?= $(shell command -v podman >/dev/null 2>&1 && echo podman || echo docker)
IMAGE ?= localhost/gatehouse

.PHONY: run test test-short lint build image bench bench-go fuzz proto traefik

run: ## the server with the example configuration
	go run ./cmd/gatehouse --config configs/gatehouse.yaml

test: ## every test, with the race detector (what CI runs); a stuck test fails at the timeout
	go test -race -count=1 -timeout 12m ./...

test-short: ## the fast suite, in seconds: no real Redis clusters, plugin processes, nginx or eg CLI
	go test -short -count=1 ./...

lint: ## no build output in git, formatting, vet and staticcheck
	.ci/check-tracked && test -z "$$(gofmt -l .)" && go vet ./... && go tool staticcheck ./...

build: ## the server and plugin binaries, into bin/, stamped with VERSION and COMMIT
	go build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

image: ## the container image (Dockerfile) as $(IMAGE):$(VERSION) and :latest, with $(CONTAINER)
	$(CONTAINER) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

traefik: .ci/bin/traefik ## the pinned Traefik (tools/traefik/go.mod) into .ci/bin, which TestTraefikGateway runs; many minutes with a cold build cache

# Rebuilt only when the pin changes. Stamped with its version, which Traefik's
# own release builds set the same way; -s -w: no symbol tables, a smaller binary.
.ci/bin/traefik: tools/traefik/go.mod tools/traefik/go.sum
	cd tools/traefik && go build -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$$(go list -m -f '{{.Version}}' github.com/traefik/traefik/v3)" \
	  -o ../../.ci/bin/traefik github.com/traefik/traefik/v3/cmd/traefik

bench: ## the load benchmark: gatehouse on a real redis-server against the machine's own ceilings, one table (docs/performance.md); BENCHFLAGS="-rounds 1" for a quick look
	@test -d adminapi/testdata/eg/node_modules/express-gateway || (cd adminapi/testdata/eg && npm ci --ignore-scripts --no-audit --no-fund) || \
	  echo "Express Gateway could not be installed (npm ci in adminapi/testdata/eg): its row shows a recorded figure"
	go run ./internal/bench/cmd $(BENCHFLAGS)

bench-go: ## the in-process Go benchmarks, with allocations per operation
	go test -run '^$$' -bench . -benchmem ./...

fuzz: ## each fuzz target for FUZZTIME (the list lives in .ci/run)
	FUZZTIME=$(FUZZTIME) .ci/run fuzz

proto: ## regenerate the plugin protocol's Go code (protoc from apt; the generators are go.mod tools)
	protoc --plugin=protoc-gen-go="$$(go tool -n protoc-gen-go)" \
	  --plugin=protoc-gen-go-grpc="$$(go tool -n protoc-gen-go-grpc)" \
	  --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
	  proto/gatehouse/plugin/v1/*.proto
