# The two commands of the README, plus benchmarks. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reviewer demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every benchmark of BENCHMARKS.md; `bench loop` alone takes hours on 2 cores.
bench: $(STAMP)
	$(BIN)/reviewer bench ingest
	$(BIN)/reviewer bench scoring
	$(BIN)/reviewer bench quality
	$(BIN)/reviewer bench auto-accept
	$(BIN)/reviewer bench queue
	$(BIN)/reviewer bench loop

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance .pytest_cache
