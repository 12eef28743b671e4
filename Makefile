# repsim: the two commands of the README are `make book` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= default

.PHONY: book test run lint bench clean help

help:
	@echo "make book     run every chapter (PROFILE=$(PROFILE)) and build the book into _build/html"
	@echo "make test     run the whole test suite"
	@echo "make run      run the chapters only (PROFILE=smoke|default|paper)"
	@echo "make lint     ruff on package, tests, benchmarks and notebooks"
	@echo "make bench    run the benchmarks"

# The environment: exact pins from requirements.lock, the package in editable mode.
$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/python -m repsim_utils run --profile $(PROFILE)

book: run
	rm -rf _build
	$(BIN)/jupyter-book build --all -W -n --keep-going .
	@echo "The book is in _build/html/index.html"

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check repsim_utils tests benchmarks notebooks

bench: $(BIN)/.installed
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf _build book/executed book/figures .repsim
