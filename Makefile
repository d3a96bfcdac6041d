# Gatehouse developer targets. `make run` needs no Redis (embedded miniredis).

FUZZTIME ?= 5s

.PHONY: run test test-short lint build bench bench-go fuzz proto

run: ## the server with the example configuration
	go run ./cmd/gatehouse --config configs/gatehouse.yaml

test: ## every test, with the race detector (what CI runs); a stuck test fails at the timeout
	go test -race -count=1 -timeout 12m ./...

test-short: ## the fast suite, in seconds: no real Redis clusters, plugin processes, nginx or eg CLI
	go test -short -count=1 ./...

lint: ## no build output in git, formatting, vet and staticcheck
	.ci/check-tracked && test -z "$$(gofmt -l .)" && go vet ./... && go tool staticcheck ./...

build: ## the server and plugin binaries, into bin/
	go build -o bin/ ./cmd/...

bench: ## the load benchmark: gatehouse on a real redis-server against the machine's own ceilings, one table (docs/performance.md); BENCHFLAGS="-rounds 1" for a quick look
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
