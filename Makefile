# Two commands set up a fresh machine: `make app` and `make test`. Both create .venv and install what is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum requirements.txt | cut -c1-8)
HOST ?= 127.0.0.1
PORT ?= 8501
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: app test system-deps bench zoo ray

$(STAMP): requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

# Debian packages the tests use: headless Chromium for the end-to-end tests, Fashion-MNIST for its loader.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  $(SUDO) apt-get install -y -q chromium dataset-fashion-mnist >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium dataset-fashion-mnist >/dev/null; }; \
	fi

app: $(STAMP)
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT) --server.headless true \
	  --browser.gatherUsageStats false

# Ray is optional for users (requirements-ray.txt); the tests start a 2-worker local Ray, so `make test` installs it.
ray: $(STAMP)
	@$(PY) -c "import ray" 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check -r requirements-ray.txt

# Two test processes (one per core), each file's tests in one process; one torch thread each, so they do not fight.
test: $(STAMP) system-deps ray
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	for b in bench/*.py; do $(PY) $$b || exit 1; done
