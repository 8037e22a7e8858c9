# The two commands of the README, plus benchmarks. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	@echo "setting up $(VENV): reviewer and its dependencies (TensorFlow among them, about 2.6 GB; a minute or two the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]' > $(VENV)/install.log 2>&1 \
		|| { tail -n 30 $(VENV)/install.log; echo "install failed: the whole log is $(VENV)/install.log"; exit 1; }
	@grep -h '^Successfully installed' $(VENV)/install.log | cut -c1-300 || true
	touch $(STAMP)

# PORT=N serves the demo on another port; DEMO_ARGS passes any other `reviewer demo` option.
demo: $(STAMP)
	$(BIN)/reviewer demo $(if $(PORT),--port $(PORT)) $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every benchmark of BENCHMARKS.md; `bench loop` alone takes hours on 2 cores.
bench: $(STAMP)
	$(BIN)/reviewer bench ingest
	$(BIN)/reviewer bench scoring
	$(BIN)/reviewer bench scoring --model rgb
	$(BIN)/reviewer bench quality
	$(BIN)/reviewer bench auto-accept
	$(BIN)/reviewer bench queue
	$(BIN)/reviewer bench scale
	$(BIN)/reviewer bench loop

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance .pytest_cache
