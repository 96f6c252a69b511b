# The two commands: `make study` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export OMP_WAIT_POLICY := PASSIVE

.PHONY: install study results test test-slow export readme bench bench-study

install: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), f"Python >= 3.10 needed, found {sys.version.split()[0]}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# make study owns both cores: its processes run one thread each (the quick profile's threads and train.threads), one training
# worker per core beside the main process (`lss-study run --workers`; benchmarks/parallel_runs.py). Tests keep PASSIVE.
# glibc malloc keeps freed memory up to the 32 MiB mmap ceiling instead of handing it back and page-faulting fresh zeroed pages on the
# next batch (LiteMedSAM encoder 1.2 -> 0.75 s/image, minor faults 389k -> 7k per image; a training epoch: within the host's noise; same bytes).
STUDY_ENV := MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483648 MALLOC_TOP_PAD_=268435456

study: install
	$(STUDY_ENV) $(BIN)/lss-study run --data phantom --profile quick --out runs/quick
	$(BIN)/python -c "import shutil; from lss_nbdev.testing import write_phantom_study as w; shutil.rmtree('runs/quick/phantom_patient', ignore_errors=True); print(w('runs/quick/phantom_patient', seed=2026))"
	$(STUDY_ENV) $(BIN)/lss-study predict --run runs/quick runs/quick/phantom_patient --out runs/quick/predict_phantom

# the notebooks' tests and pytest side by side, two workers each (pytest-xdist), so that both cores stay busy until the last test
# ends (one after the other: the idle tail of each adds ~1 min); make test fails when either does
test: install
	$(BIN)/nbdev_test --n_workers 2 & nb=$$!; \
	$(BIN)/python -m pytest -q -n 2 --dist worksteal tests; py=$$?; \
	wait $$nb; nb=$$?; \
	if [ $$nb -ne 0 ]; then echo "make test: nbdev_test failed (exit $$nb)"; fi; \
	test $$nb -eq 0 -a $$py -eq 0

test-slow: install
	$(BIN)/nbdev_test --n_workers 1 --flags slow

export: install
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(MAKE) readme

# results/quick: the tables, config and manifest of runs/quick that the README's findings are read from (commit them)
results:
	rm -rf results/quick && mkdir -p results/quick/tables
	cp runs/quick/tables/*.csv results/quick/tables/ && cp runs/quick/config.yaml runs/quick/manifest.json results/quick/
	cp runs/quick/figures/overlays.png runs/quick/figures/real_overlays.png nbs/images/
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace nbs/index.ipynb && $(BIN)/nbdev_clean --fname nbs/index.ipynb
	$(MAKE) readme

# README.md is generated from nbs/index.ipynb (nbdev_readme needs quarto, which cannot be installed offline)
readme: install
	$(BIN)/jupyter nbconvert --to markdown --no-input --stdout nbs/index.ipynb 2>/dev/null | sed 's|](images/|](nbs/images/|g' > README.md

# the study's per-stage times and loop rates, trainings side by side against one at a time, and what a training worker's memory
# is made of, under make study's settings
bench-study: install
	$(STUDY_ENV) $(BIN)/python benchmarks/study.py
	$(STUDY_ENV) $(BIN)/python benchmarks/parallel_runs.py
	$(STUDY_ENV) $(BIN)/python benchmarks/worker_memory.py

bench: install
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

# The docs site without Quarto: docs/build.py runs nbdev's processors on every notebook (all cells executed
# as nbdev_test does), then Sphinx + MyST-NB write _docs/. Where Quarto is installed, `nbdev_docs` renders
# the same notebooks with nbs/_quarto.yml. DOCS_ARGS: e.g. --force (execute all again), --only 00_config
.PHONY: docs docs-check
docs: install
	$(BIN)/python docs/build.py $(DOCS_ARGS)

# _docs/ in headless Chromium with the network off (links, images, console, math); screenshots in _docs/_check/
docs-check: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  { echo "docs-check needs Chromium: apt-get install -y chromium"; exit 1; }
	$(BIN)/python docs/check.py $(CHECK_ARGS)
