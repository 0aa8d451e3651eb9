# Thin wrapper for the README's two commands; the build itself is meson.
#   make run   -- installs what is missing, builds, starts relayd on 127.0.0.1:4000
#   make test  -- installs what is missing, builds in a fresh dir, runs every suite
BUILD ?= build
ARGS ?=

.PHONY: all run test deps build clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./$(BUILD)/src/relayd/relayd $(ARGS)

test: deps
	rm -rf $(BUILD)-test
	meson setup $(BUILD)-test
	meson test -C $(BUILD)-test --print-errorlogs

clean:
	rm -rf $(BUILD) $(BUILD)-test
