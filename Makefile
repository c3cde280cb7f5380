# citypilot: make demo | make test | make bench
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test bench lint servers clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11+)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The real servers the tests talk to: Debian's mosquitto and influxdb, installed when missing.
servers:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto mosquitto-clients"; \
	command -v influxd >/dev/null || missing="$$missing influxdb"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing from Debian" >&2; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	  else echo "missing:$$missing — install them (apt-get install$$missing)" >&2; exit 1; fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/citypilot up --demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(STAMP) servers lint
	PATH="/usr/sbin:$$PATH" $(PY) -m pytest -q

bench: $(STAMP) servers
	PATH="/usr/sbin:$$PATH" $(PY) -m bench

clean:
	rm -rf $(VENV) citypilot-data .pytest_cache .mypy_cache .ruff_cache
