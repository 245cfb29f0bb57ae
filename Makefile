# Two commands do all set-up from nothing:  `make demo` (the main job)  and  `make test`.
# Both create or reuse the virtual environment in $(VENV).
#
# torch: on a CPU-only machine the CPU build ($(TORCH)) is installed first, so nothing pulls a
# multi-GB CUDA build. On a GPU box install your CUDA build of torch into $(VENV) first (README);
# it is kept, because the project only asks for torch>=2.3.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench reference clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/workbench demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check workbench tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/models.py

# Reference checks against torchvision, in a separate environment (torchvision does not import
# beside the CPU build of torch 2.13.0): parameter counts, GMACs, converted weights -> same logits,
# and the speed comparison.
REF_VENV ?= .venv-ref
REF_TORCH ?= torch==2.14.1 torchvision==0.29.1
$(REF_VENV)/.installed: pyproject.toml
	@test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	@$(REF_VENV)/bin/python -c "import torchvision" 2>/dev/null || $(REF_VENV)/bin/pip install $(REF_TORCH)
	$(REF_VENV)/bin/pip install -e ".[dev]"
	@touch $@

reference: $(REF_VENV)/.installed
	$(REF_VENV)/bin/python -m pytest -m reference tests/reference -v

bench-reference: $(REF_VENV)/.installed
	$(REF_VENV)/bin/python benchmarks/models.py

clean-venv:
	rm -rf $(VENV) $(REF_VENV)
