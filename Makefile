# PortPal: `make run` starts the assistant, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared

.PHONY: run test lint typecheck unit eval bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "Creating $(VENV) ..."; $(PYTHON) -m venv $(VENV); }
	@echo "Installing PortPal and its dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

run: $(STAMP)
	@$(BIN)/portpal run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

# The shared development question set, scored by the shared scorer through `portpal ask --json`.
eval: $(STAMP)
	$(PYTHON) $(SHARED)/eval/run_eval.py $(SHARED)/eval/dev_questions.json --cmd "$(BIN)/portpal ask --json" --min 0.9

test: lint typecheck unit eval

bench: $(STAMP)
	$(BIN)/python bench/answer_latency.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
