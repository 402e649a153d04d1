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
	$(PY) -m flake8 pair_drive_ros test benchmarks launch setup.py
	$(PY) -m pydocstyle --ignore=D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404 \
		pair_drive_ros test benchmarks launch setup.py

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

# The selector's chain, one DAgger round: a first selector trained on the expert's logs only,
# IL-A + PaIR rollouts on the train seeds driven by it, then config/selector.yaml on the
# expert's logs plus those rollouts (train seeds 0-39 per scenario; episodes end off the lane
# strips, the rule of the shipped selector). Needs data/logs
# (pair-drive generate); about 30 min on 2 cores. The last step replaces models/pair_selector.pt:
# make selector SELECTOR_FLAGS=--force.
selector: $(STAMP)
	mkdir -p runs
	$(PY) -m pair_drive_ros.cli train selector --config config/selector.yaml \
		--set extra_data_roots=[] --set out=runs/pair_selector_expert_logs.pt
	$(PY) -m pair_drive_ros.cli train rollouts --out data/logs_onpolicy --episodes 40 \
		--selector-checkpoint runs/pair_selector_expert_logs.pt --off-road lanes
	$(PY) -m pair_drive_ros.cli train selector --config config/selector.yaml $(SELECTOR_FLAGS)

clean:
	rm -rf $(VENV) build *.egg-info

# Every shipped model rebuilt from HEAD by `pair-drive zoo` (docs/MODEL_ZOO.md): expert data,
# IL-A, IL-B, the RL branch (its trunk copied from this run's IL-A), the selector after one
# DAgger round, the paper-set selector, both sequential baselines, evaluation and a model card
# per checkpoint. The shipped run's stages took about 1 h 15 min on 2 CPU cores, the equal-budget
# sequential baselines most of it (the plan estimates 3 h 10 min);
# intermediate files in runs/zoo. models/ already holds the shipped files,
# so the zoo refuses to start until told: `make models ZOO_FLAGS=--force` replaces them.
# After an interruption, the same command skips the finished stages and goes on.
ZOO_CONFIG ?= config/zoo.yaml
ZOO_FLAGS ?=
.PHONY: models
models: $(STAMP)
	$(PY) -m pair_drive_ros.cli zoo --config $(ZOO_CONFIG) --out models $(ZOO_FLAGS)
