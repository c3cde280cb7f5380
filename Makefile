# citypilot: make demo | make test | make bench | make fuzz
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test bench fuzz lint servers clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11+)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

# What the tests run for real, from Debian, installed when missing (binary:package).
DEBIAN_TOOLS = mosquitto:mosquitto mosquitto_sub:mosquitto-clients \
               mosquitto_passwd:mosquitto influxd:influxdb openssl:openssl \
               chromium:chromium pdftoppm:poppler-utils pdftotext:poppler-utils \
               fc-list:fontconfig wrk:wrk
# What WeasyPrint needs for the evaluation report's PDF (shared library:package, font:package).
DEBIAN_LIBS  = libpango-1.0.so.0:libpango-1.0-0 libpangoft2-1.0.so.0:libpangoft2-1.0-0
DEBIAN_FONTS = DejaVuSans.ttf:fonts-dejavu-core
servers:
	@missing=""; \
	for pair in $(DEBIAN_TOOLS); do \
	  bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  PATH="/usr/sbin:/usr/bin:$$PATH" command -v $$bin >/dev/null || missing="$$missing $$pkg"; \
	done; \
	for pair in $(DEBIAN_LIBS); do \
	  /sbin/ldconfig -p | grep -q "$${pair%%:*}" || missing="$$missing $${pair##*:}"; \
	done; \
	for pair in $(DEBIAN_FONTS); do \
	  fc-list 2>/dev/null | grep -q "$${pair%%:*}" || missing="$$missing $${pair##*:}"; \
	done; \
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

# Two workers (pytest-xdist), a test file per worker at a time (module fixtures stay whole):
# most tests wait on real servers, so two cores run two files at once.
test: $(STAMP) servers lint
	PATH="/usr/sbin:$$PATH" $(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP) servers
	PATH="/usr/sbin:$$PATH" $(PY) -m bench

# schemathesis, every phase and check, FUZZ_EXAMPLES cases per operation against the API over
# its own InfluxDB (the suite runs 10). Measured on 2 shared cores: 100 took 3 min; 1000 had
# not finished after 37 min (PUT /api/v1/registry, its large bodies, is the slow operation).
FUZZ_EXAMPLES ?= 300
fuzz: $(STAMP) servers
	PATH="/usr/sbin:$$PATH" $(PY) -m tests.api.fuzz --examples $(FUZZ_EXAMPLES)

clean:
	rm -rf $(VENV) citypilot-data .pytest_cache .mypy_cache .ruff_cache
