# Parley: `make run` builds and starts the server, `make test` runs every test.
GO ?= go
BIN := bin/parley

.PHONY: build web run test test-short fuzz bench pgo deps clean

# The browser client is built into web/dist first: the binary embeds it.
build: web
	$(GO) build -o $(BIN) ./cmd/parley

web:
	$(GO) run ./web/build -out web/dist

run: build
	./$(BIN) serve

deps:
	./scripts/deps.sh

# Every test, then a short fuzz run of each decoder of untrusted input and of the bandwidth
# estimator fed hostile feedback. Packages run one at a time (-p 1): several of them run
# real calls, browsers and SFUs, and two such packages at once on a 2-core machine starve
# each other's media.
test: deps web
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./web/client
	$(GO) test -race -count=1 -p 1 -timeout 30m ./...
	$(MAKE) fuzz FUZZTIME=1000000x

test-short:
	$(GO) test -short ./...

# Fuzz budgets are counts of executions (Nx), not durations: with a duration, Go 1.26's
# fuzz coordinator can fail a run with a bare "context deadline exceeded" as the time runs
# out, no input at fault (golang/go#75804, fixed in Go 1.27); it did so once in CI here.
# 1,000,000 executions take 15 to 20 s per target on 2 cores.
FUZZTIME ?= 5000000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz '^FuzzCleanName$$' -fuzztime $(FUZZTIME) ./protocol
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./media
	$(GO) test -run '^$$' -fuzz '^FuzzFeedback$$' -fuzztime $(FUZZTIME) ./bwe

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# The profile the server is built with (profile-guided optimisation, go build's -pgo=auto:
# cmd/parley/default.pgo): the server's CPU profiles during the SFU benchmark at 200
# subscribers and a group call of 16, merged. Run it on a quiet machine, and commit the new
# default.pgo when the forwarding code has changed much.
PGODIR := bin/pgo
pgo: build
	rm -rf $(PGODIR)
	./$(BIN) bench sfu --subscribers 200 --duration 30s --server-cpuprofile $(PGODIR)
	./$(BIN) bench group --participants 16 --duration 30s --server-cpuprofile $(PGODIR)
	$(GO) tool pprof -proto $(PGODIR)/*.pprof > cmd/parley/default.pgo

clean:
	rm -rf bin
	find web/dist -mindepth 1 ! -name .gitkeep -delete
