# Two commands from a fresh clone: `make demo` and `make test`. Only python3 and make are assumed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench lock clean viewer-js chromium gpu-wheels

# torch is locked as PyTorch's CPU build (2.13.0+cpu: no CUDA, no nvidia-* wheels), which PyPI
# does not carry: pip and uv find it in TORCH_WHEELS, a folder or page of wheels (CI's machines
# hold it in /opt/wheels; elsewhere PyTorch's own CPU wheel page).
TORCH_LOCK   ?= torch==2.13.0+cpu
TORCH_WHEELS ?= $(if $(wildcard /opt/wheels/torch-*+cpu-*.whl),/opt/wheels,https://download.pytorch.org/whl/cpu/torch/)

# pip installs the build backend and uv first, from the lock, so the locked sdists (func-timeout,
# pdbfixer) build with it and nothing unpinned is downloaded; uv installs the rest (22 s on 2
# cores against pip's 4 min). Modules are compiled to bytecode when first imported, not all
# ahead (which costs uv 1.5 min more, mostly for modules the suite never imports).
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	awk '/^[^ #]/ { keep = /^(setuptools|wheel|uv)==/ } keep' requirements.lock > $(VENV)/bootstrap.lock
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/bootstrap.lock
	$(UV) --require-hashes --find-links $(TORCH_WHEELS) -r requirements.lock
	$(UV) -e .
	touch $@

DEMO_MSA := examples/PF02518_HATPase_c_seed.fasta
DEMO_OUT := demo-output
# Real weights when PARAM_DIR (default ~/.cache/foldserve) has them; otherwise random test
# weights (8 evoformer blocks, so the demo takes minutes on a laptop CPU), loudly flagged.
DEMO_PARAMS ?= $(or $(PARAM_DIR),$(HOME)/.cache/foldserve)
DEMO_TEST_PARAMS := $(DEMO_OUT)/test-weights

demo: $(STAMP) viewer-js
	mkdir -p $(DEMO_OUT)
	$(BIN)/foldserve msa inspect $(DEMO_MSA)
	$(BIN)/foldserve msa filter $(DEMO_MSA) $(DEMO_OUT)/PF02518_filtered.a3m \
		--max-seq-id 90 --min-coverage 50 --max-seqs 256
	$(BIN)/foldserve msa convert $(DEMO_OUT)/PF02518_filtered.a3m $(DEMO_OUT)/PF02518_filtered.sto
	$(BIN)/foldserve msa inspect --json $(DEMO_OUT)/PF02518_filtered.sto > $(DEMO_OUT)/PF02518_filtered.json
	@if [ -f "$(DEMO_PARAMS)/params/params_model_1_ptm.npz" ] && \
	    [ ! -f "$(DEMO_PARAMS)/params/TEST_WEIGHTS.json" ]; then \
		params="$(DEMO_PARAMS)"; models=1,2,3,4,5; \
	else \
		echo "no AlphaFold2 weights in $(DEMO_PARAMS): using random TEST WEIGHTS"; \
		params="$(DEMO_TEST_PARAMS)"; models=1,3; \
		[ -f "$$params/params/TEST_WEIGHTS.json" ] || \
			$(BIN)/foldserve weights make-test --out "$$params" --blocks 8; \
	fi; \
	$(BIN)/foldserve predict $(DEMO_OUT)/PF02518_filtered.a3m $(DEMO_OUT)/PF02518_prediction \
		--output $(DEMO_OUT)/PF02518.pdb --overwrite --params-dir "$$params" --models $$models
	$(BIN)/foldserve report $(DEMO_OUT)/PF02518_prediction --output $(DEMO_OUT)/PF02518_report.html
	@echo "demo outputs in $(DEMO_OUT)/:"
	@echo "  best model  $(DEMO_OUT)/PF02518.pdb"
	@echo "  prediction  $(DEMO_OUT)/PF02518_prediction/ (config.json, log.txt)"
	@echo "  plots       $(DEMO_OUT)/PF02518_prediction/plddt.png pae.png coverage.png"
	@echo "  report      $(DEMO_OUT)/PF02518_report.html (open it in a browser)"

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) viewer-js chromium
	$(BIN)/pytest -q -n 2 --dist loadfile

# The report's 3D viewer: 3Dmol.js from its npm package, pinned and integrity-checked
# (src/foldserve/pipeline/viewer_js.py), kept out of git.
viewer-js: $(STAMP)
	$(BIN)/python -m foldserve.pipeline.viewer_js

# The report test opens the page in headless Chromium (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium; }

bench: $(STAMP)
	$(BIN)/python bench/msa_parse.py
	$(BIN)/python bench/fold_engine.py

# The wheels bench/gpu.sh installs on the lent GPU machine, which reaches no registry: the cp312
# manylinux wheels pinned (with hashes) in bench/gpu-wheels.txt, into bench/gpu-wheels/
# (git-ignored, carried with the run), refused above 60 MiB (a call carries 64 MiB in all).
gpu-wheels: $(STAMP)
	rm -rf bench/gpu-wheels
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
		--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
		--platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d bench/gpu-wheels -r bench/gpu-wheels.txt
	@du -sh bench/gpu-wheels
	@test $$(du -sm bench/gpu-wheels | cut -f1) -le 60 || \
		{ echo "bench/gpu-wheels is over 60 MiB: it would not travel with the run" >&2; exit 1; }

# Re-lock after editing pyproject.toml (needs uv: `pip install uv`): the development tools (which
# take in the mmseqs and relax extras) and the openfold3 and ray extras, torch held at its CPU build
# (TORCH_LOCK) from TORCH_WHEELS, whose address stays out of the lock.
lock:
	echo '$(TORCH_LOCK)' | $(or $(wildcard $(BIN)/uv),uv) pip compile pyproject.toml --extra dev --extra openfold3 --extra ray \
		--constraint - --find-links $(TORCH_WHEELS) --no-emit-find-links \
		--generate-hashes --no-emit-index-url --custom-compile-command 'make lock' \
		--python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
