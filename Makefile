# Porthole — the two commands a new user needs:
#   make run    build and open the desktop window
#   make test   every check, green (installs what it needs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
BIN       := build/bin/porthole
# The window lives in a second build of the same source: porthole-desktop links
# GTK/WebKit; porthole (serve, forward, agents) does not, and execs the window.
DESKTOP   := build/bin/porthole-desktop
TAGS      := desktop,production
WAILS_VER := v2.16.0
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GO_SRC    := $(shell find . \( -name '*.go' -o -name '*.c' -o -name '*.h' \) -not -path './frontend/*' -not -path './build/*') go.mod go.sum
UI_SRC    := $(shell find frontend/src frontend/index.html frontend/vite.config.* frontend/tsconfig*.json frontend/package.json -type f 2>/dev/null)

.PHONY: run build test lint bench soak deps deps-test frontend clean wails-cli screenshots

## run: build, then open the desktop window (needs a display)
run: build
	@if [ -z "$${DISPLAY:-}" ] && [ -z "$${WAYLAND_DISPLAY:-}" ] && [ "$$(uname)" = Linux ]; then \
	  echo "make run: no display (DISPLAY/WAYLAND_DISPLAY unset), so the window cannot open."; \
	  echo "          Use Porthole from your browser instead:  $(BIN) serve --open"; \
	  exit 1; fi
	exec ./$(BIN)

## build: build build/bin/porthole and build/bin/porthole-desktop (tags desktop,production)
build: deps $(BIN) $(DESKTOP)

$(BIN): frontend/dist/index.html $(GO_SRC)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .
	@echo "built $(BIN)"

$(DESKTOP): frontend/dist/index.html $(GO_SRC)
	$(GO) build -tags $(TAGS) -trimpath -ldflags "$(LDFLAGS)" -o $(DESKTOP) .
	@echo "built $(DESKTOP)"

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(UI_SRC)
	cd frontend && npm run build

frontend: frontend/dist/index.html

## test: every check (gofmt, vet, go test -race, vitest, playwright, desktop smoke)
test: deps-test build
	@scripts/test.sh

## lint: gofmt, go vet, vue-tsc
lint: frontend/node_modules/.package-lock.json
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './frontend/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags $(TAGS) .
	cd frontend && npm run typecheck

## bench: Porthole's forwarder against OpenSSH ssh -N -L, and the window's memory with app tabs against Chromium (under Xvfb); writes docs/BENCHMARKS.md
bench: deps-test build
	$(GO) run ./internal/bench -porthole $(BIN) -out docs/BENCHMARKS.md
	$(GO) run ./internal/desktoptest -bin $(BIN) -out build/test-artifacts -memory docs/BENCHMARKS.md

## soak: 100,000 connections, 1,000 at a time, through a web and a raw forward of an agent
##       on a real sshd: zero errors, no fd or goroutine growth (`make test` runs 2,000)
soak: deps-test
	PORTHOLE_SOAK=full $(GO) test -count=1 -timeout 30m -run 'TestSoak$$' -v ./internal/faults

## screenshots: the README's window screenshots (docs/screenshots), from the Xvfb desktop test
screenshots: deps-test build
	$(GO) run ./internal/desktoptest -bin $(BIN) -out build/test-artifacts -shots docs/screenshots

## wails-cli: install the Wails CLI at the pinned version (for `wails dev`)
wails-cli:
	$(GO) install github.com/wailsapp/wails/v2/cmd/wails@$(WAILS_VER)

clean:
	rm -rf build/bin build/test-artifacts frontend/dist/assets frontend/dist/index.html

.PHONY: fuzz
FUZZTIME ?= 60s
## fuzz: run every fuzz target for FUZZTIME each (default 60s; make fuzz FUZZTIME=10s), one after the other
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# ---- packaging: double-click to run (scripts/package.sh) ----
.PHONY: install uninstall package cross
PREFIX ?= $(HOME)/.local
CROSS  := darwin/amd64 darwin/arm64 windows/amd64
DEB_COMPRESS ?= xz

## install: build, then install into PREFIX (default ~/.local): bin/, the menu entry, icons
install: build
	@scripts/package.sh install "$(abspath $(PREFIX))"

## uninstall: remove exactly the files `make install PREFIX=…` installed
uninstall:
	@scripts/package.sh uninstall "$(abspath $(PREFIX))"

## package: build/porthole_<version>_<arch>.deb (dpkg-deb)
package: build
	@DEB_COMPRESS=$(DEB_COMPRESS) scripts/package.sh deb "$(VERSION)"

## cross: the plain porthole (serve, forward, agent; no cgo) for macOS and Windows, in build/cross/
cross: frontend/dist/index.html
	@mkdir -p build/cross
	@for t in $(CROSS); do os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
	  out=build/cross/porthole-$$os-$$arch$$ext; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $$out . ; \
	  echo "built $$out"; done

clean: clean-package
.PHONY: clean-package
clean-package:
	rm -rf build/cross build/porthole_*.deb
