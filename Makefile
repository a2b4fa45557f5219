# The two quick-start commands: `make run` and `make test` (both set everything up first).
VENV ?= .venv
PY := $(VENV)/bin/python
PONDER := $(VENV)/bin/ponder

.PHONY: setup run test test-all bench bundled

$(VENV)/.ponder-installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

setup: $(VENV)/.ponder-installed

# The main job on the bundled model: think at two effort levels, then measure held-out
# pass@1 at every effort level on 60 problems it never saw in training.
run: setup
	$(PONDER) ask "What is 347 * 29?" --effort high --show-reasoning
	$(PONDER) ask "What is 347 * 29?" --effort minimal --json
	$(PY) bench/heldout_by_effort.py --n 60

# The whole suite but the slow tests (those need minutes; `make test-all` runs them too).
test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/engine_vs_hf.py
	$(PY) bench/sft_mfu.py

# Retrain the bundled model from its three recipes (from scratch, a tuning stage with cut
# traces, then 150 RL steps) and copy it into the package. The shipped weights were
# trained in bf16 (1.8x faster on a CPU with AVX512-BF16; on one without, use --precision fp32).
bundled: setup
	$(PONDER) train --stage sft --recipe recipes/default.toml --precision bf16 --name bundled
	$(PONDER) train --stage sft --recipe recipes/bundled_tune.toml --init-from runs/bundled/final --name bundled_tune
	$(PONDER) train --stage rl --recipe recipes/rl.toml --init-from runs/bundled_tune/final --precision bf16 \
		--steps 150 --eval-every 25 --test-time-problems 0 --threads 1 --name bundled_rl
	rm -rf ponder/assets/default && cp -r runs/bundled_rl/final ponder/assets/default
