# PortPal: `make run` starts the assistant, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared
# Rasa 3.6 needs Python 3.10 and its own dependency pins: its own virtual environment.
# The card agent's extra (pyscard) builds against the system's PC/SC library on Linux.
AGENT_STAMP := $(VENV)/.installed-agent
RASA_VERSION := 3.6.21
RASA_VENV    := .venv-rasa
RASA_STAMP   := $(RASA_VENV)/.installed-$(RASA_VERSION)
FIND_PY310   := sh scripts/find-python310

.PHONY: agent run test lint typecheck export-check unit eval eval-lexical bench rasa model system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "Creating $(VENV) ..."; $(PYTHON) -m venv $(VENV); }
	@echo "Installing PortPal and its dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

$(AGENT_STAMP): $(STAMP)
	@sh scripts/install-system-deps
	@echo "Installing the card agent's dependencies (pyscard) into $(VENV) ..."
	@$(BIN)/python -m pip install -q -e '.[dev,agent]'
	@touch $@

agent: $(AGENT_STAMP)

$(RASA_STAMP):
	@py=$$($(FIND_PY310)) || { echo "Rasa needs Python 3.10 and none was found (set PYTHON310=/path/to/python3.10)."; exit 1; }; \
	echo "Creating $(RASA_VENV) with $$py and installing Rasa $(RASA_VERSION) + jieba (about 2 minutes, 2.7 GB) ..."; \
	rm -rf $(RASA_VENV) && "$$py" -m venv $(RASA_VENV) && \
	$(RASA_VENV)/bin/python -m pip install -q --upgrade pip 'setuptools<70' wheel && \
	$(RASA_VENV)/bin/python -m pip install -q 'rasa==$(RASA_VERSION)' jieba && \
	echo "Rasa $(RASA_VERSION) installed in $(RASA_VENV)."
	@touch $@

rasa: $(RASA_STAMP)

# Train the NLU model of the committed export (skipped when one of the same data exists).
model: $(STAMP) $(RASA_STAMP)
	@$(BIN)/portpal nlu train

# Without Python 3.10 the assistant still runs, on the lexical engine.
run: $(STAMP)
	@if $(FIND_PY310) >/dev/null; then $(MAKE) --no-print-directory model; \
	else echo "Python 3.10 not found: Rasa cannot be installed; PortPal runs on its lexical NLU engine."; fi
	@$(BIN)/portpal run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The committed Rasa export must match the knowledge base it is generated from.
export-check: $(STAMP)
	$(BIN)/portpal nlu export --check

# Debian packages the tests use (PostgreSQL server, faketime), installed when missing.
system-deps:
	@sh scripts/install-system-deps

# The whole suite twice: on SQLite, then on a real PostgreSQL server (PORTPAL_TEST_DB).
# `.ci/run` starts the server and sets PORTPAL_TEST_POSTGRES_URL; without it the tests
# start a throwaway one themselves.
# The question corpora need no database: they run in the first pass only.
unit: $(STAMP) $(AGENT_STAMP) model system-deps
	PORTPAL_TEST_DB=sqlite $(BIN)/pytest -q
	PORTPAL_TEST_DB=postgresql $(BIN)/pytest -q -m "not corpus"

# The shared development question set, scored by the shared scorer through `portpal ask --json`:
# with Rasa (the bot starts its own server; fails if Rasa is unavailable), then lexical only.
eval: $(STAMP) model
	$(PYTHON) $(SHARED)/eval/run_eval.py $(SHARED)/eval/dev_questions.json --cmd "$(BIN)/portpal ask --json --nlu rasa" --min 0.95

eval-lexical: $(STAMP)
	$(PYTHON) $(SHARED)/eval/run_eval.py $(SHARED)/eval/dev_questions.json --cmd "$(BIN)/portpal ask --json --nlu lexical" --min 0.9

test: lint typecheck export-check unit eval eval-lexical

bench: $(STAMP) $(AGENT_STAMP) model
	$(BIN)/python bench/answer_latency.py
	$(BIN)/python bench/nlu_compare.py
	$(BIN)/python bench/understanding.py
	$(BIN)/python bench/walkthroughs.py
	$(BIN)/python bench/walkthrough_latency.py
	$(BIN)/python bench/form_render.py --pdf
	$(BIN)/python bench/http_client.py
	$(BIN)/python bench/telegram_throughput.py --rate 200 --seconds 10 --mode polling
	$(BIN)/python bench/telegram_throughput.py --users 50 --mode polling
	$(BIN)/python bench/telegram_throughput.py --users 50 --mode webhook
	$(BIN)/python bench/telegram_throughput.py --users 20 --nlu rasa
	$(BIN)/python bench/card_agent.py
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) $(RASA_VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
