# The two commands of the README. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-packages clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# This torch/torchvision pair lies on the machine's disk; pip takes it from there.
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[interop,dev,export,viz]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: the zoo table, then LeNet-5 trained on the embedded handwritten digits.
demo: $(STAMP)
	$(BIN)/cnnzoo list
	$(BIN)/cnnzoo train lenet5 --data digits

test: $(STAMP) system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# Graphviz renders diagrams; headless Chromium runs the HTML report's browser test.
system-packages:
	command -v dot >/dev/null && command -v chromium >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends graphviz chromium)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
