# Thin wrapper for the README's two commands; the build itself is meson.
#   make run   -- installs what is missing, builds, starts relayd on 127.0.0.1:4000
#                 with the chat page and WebSocket listener on 127.0.0.1:$(WEB_PORT)
#   make test  -- installs what is missing, builds in a fresh dir, runs every suite
BUILD ?= build
ARGS ?=
WEB_PORT ?= 8080

.PHONY: all run test deps build clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@echo "relayd: chat page at http://127.0.0.1:$(WEB_PORT)/ -- open it in a browser;" \
	      "relay-cli connects to 127.0.0.1:4000"
	./$(BUILD)/src/relayd/relayd --ws-port $(WEB_PORT) --web-root $(BUILD)/web $(ARGS)

# -Dtests/-Dman-pages=enabled: a missing Criterion or scdoc is an error here,
# not a build that quietly runs fewer tests.
test: deps
	rm -rf $(BUILD)-test
	meson setup $(BUILD)-test -Dtests=enabled -Dman-pages=enabled
	meson test -C $(BUILD)-test --print-errorlogs

clean:
	rm -rf $(BUILD) $(BUILD)-test
