# repsim: the two commands of the README are `make book` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= default

.PHONY: book test run lint bench publish clean clean-results help

help:
	@echo "make book     run every chapter (PROFILE=$(PROFILE)) and build the book into _build/html"
	@echo "make test     run the whole test suite"
	@echo "make run      run the chapters only (PROFILE=smoke|default|paper)"
	@echo "make lint     ruff on package, tests, benchmarks and notebooks"
	@echo "make bench    run the benchmarks"
	@echo "make publish  push the built book (_build/html) to the gh-pages branch (ghp-import)"
	@echo "make clean    a fresh book build next time (removes _build); published runs stay"
	@echo "make clean-results  also remove every published run (make book executes them again)"

# The environment: exact pins from requirements.lock, the package in editable mode.
$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

# Runs whose inputs did not change are skipped (the execution cache; FORCE=1 reruns them all);
# JOBS=N runs N at once on a local Dask cluster.
JOBS  ?= 1
FORCE ?=
run: $(BIN)/.installed
	$(BIN)/python -m repsim_utils run --profile $(PROFILE) --jobs $(JOBS) $(if $(FORCE),--force)

# Incremental: Sphinx re-reads only the pages that changed (`make clean` for a fresh build).
book: run
	$(BIN)/jupyter-book build -W -n --keep-going .
	@echo "The book is in _build/html/index.html"

# GitHub Pages by hand (the workflow .github/workflows/book.yml does it on every push to main):
# commits _build/html to the gh-pages branch and pushes it to origin.
publish: $(BIN)/.installed
	test -f _build/html/index.html || (echo "build the book first: make book" && exit 1)
	$(BIN)/ghp-import --no-jekyll --push --force _build/html

test: $(BIN)/.installed
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check repsim_utils tests benchmarks notebooks scripts

# The CKA peers (bench_cka_peers.py) are installed for the benchmarks only, without their
# dependencies (cka-pytorch's lightning is not needed for its HSIC function).
PEERS := .bench-peers
$(PEERS)/.installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --no-deps --target $(PEERS) ckatorch==1.0.3 \
		cka-pytorch==1.1.3 safetensors==0.8.0
	touch $@

bench: $(BIN)/.installed $(PEERS)/.installed
	for f in benchmarks/bench_*.py; do PYTHONPATH=$(PEERS) $(BIN)/python $$f || exit 1; done

# A fresh Sphinx build next time; the published runs (book/executed, book/figures) stay, so
# the next `make book` rebuilds the site without executing anything that did not change.
clean:
	rm -rf _build .repsim/failed

# Everything the runs published, too: the next `make book` executes every run again (the
# trained networks stay in .cache/repsim).
clean-results: clean
	rm -rf book/executed book/figures book/.repsim-work .repsim
