# make test | make demo | make bench: each creates .venv when missing and installs into it once.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch goes in first and pinned: the CPU wheel of exactly this version; any other torch request
# makes pip fetch a multi-GB CUDA build.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: test demo bench lint clean warmup

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev]'
	# byte-compile the package as a regular (non-editable) install does: where PYTHONDONTWRITEBYTECODE
	# is set, every command would otherwise compile its ~50 modules from source (~0.15 s each start)
	$(PY) -m compileall -q src
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q

# Lint and type-check: the same rules CI runs (configured in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(VENV)/bin/quasieq demo

# Compile the region engine's numba kernels now (2-D and 3-D-and-up paths): they are cached next to the
# sources, so no later enumeration waits for the compiler (docs/guide.md says how long that takes).
warmup: $(STAMP)
	$(PY) -c "import numpy as np, quasieq as qe; [qe.regions(qe.ReluNet([np.eye(d), np.ones((1, d))], \
	[np.zeros(d), np.zeros(1)]), qe.Box.cube(d)) for d in (2, 3)]"

# Peer tools are best-effort: a peer that fails to install is skipped by the benchmark with a note.
$(VENV)/.bench-installed: $(STAMP)
	-$(PIP) install -e '.[bench]' || for p in regioncam affinitree relucent; do $(PIP) install $$p || true; done
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/regions.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info quasieq-demo .pytest_cache .hypothesis
