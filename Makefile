# The README's two commands: `make demo` and `make test`. Both create .venv on first use and reuse it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench selector clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pair_drive_ros.cli demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider test

lint: $(STAMP)
	$(PY) -m flake8 pair_drive_ros test benchmarks

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# The shipped selector (models/pair_selector.pt), one DAgger round: IL-A + PaIR rollouts on the
# train seeds, driven by the previous shipped selector (session 3, trained on the expert's logs
# only; taken from git history), then config/selector.yaml on the expert's logs plus those
# rollouts (train seeds 0-39 per scenario). Needs data/logs (pair-drive generate) and a git
# checkout; about 15 min on 2 cores.
selector: $(STAMP)
	mkdir -p runs
	git show da16852:models/pair_selector.pt > runs/pair_selector_session3.pt
	$(PY) -m pair_drive_ros.cli train rollouts --out data/logs_onpolicy_s3 --episodes 20 \
		--selector-checkpoint runs/pair_selector_session3.pt
	$(PY) -m pair_drive_ros.cli train rollouts --out data/logs_onpolicy_s3b --episodes 20 \
		--skip-seeds 20 --selector-checkpoint runs/pair_selector_session3.pt
	$(PY) -m pair_drive_ros.cli train selector --config config/selector.yaml

clean:
	rm -rf $(VENV) build *.egg-info

# Every shipped model rebuilt from HEAD by `pair-drive zoo` (docs/MODEL_ZOO.md): expert data,
# IL-A, IL-B, the RL branch (its trunk copied from this run's IL-A), the selector after one
# DAgger round, both sequential baselines, evaluation and a model card per checkpoint. About
# 2.5 h on 2 CPU cores; intermediate files in runs/zoo. models/ already holds the shipped files,
# so the zoo refuses to start until told: `make models ZOO_FLAGS=--force` replaces them.
# After an interruption, the same command skips the finished stages and goes on.
ZOO_CONFIG ?= config/zoo.yaml
ZOO_FLAGS ?=
.PHONY: models
models: $(STAMP)
	$(PY) -m pair_drive_ros.cli zoo --config $(ZOO_CONFIG) --out models $(ZOO_FLAGS)
