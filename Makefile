# The few commands people type. `make run` gives a working demo; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
COMPILED := $(VENV)/.compiled-stamp
PO := $(wildcard coop/translations/*/LC_MESSAGES/messages.po)
MO := $(PO:.po=.mo)

.PHONY: install run test test-image lint format translations extract-messages bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The matching's branch and bound is compiled by Numba on first use (about 20 s) and cached next
# to its source; compile it here, so that no match and no benchmark pays for it.
$(COMPILED): coop/matching/branch.py $(STAMP)
	$(BIN)/python -c "from coop.matching.branch import warm_up; warm_up()"
	touch $(COMPILED)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -i $< -o $@ >/dev/null

install: $(STAMP) $(MO) $(COMPILED)

translations: $(MO)

# Collect the texts to translate from code and templates into the catalogues. Texts no longer
# used are dropped (--ignore-obsolete); babel.cfg makes a template that does not parse an error
# instead of silently dropping its texts. tests/test_translations.py fails until every new text
# has its Dutch translation.
extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o coop/translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i coop/translations/messages.pot -d coop/translations --no-fuzzy-matching --ignore-obsolete

run: install
	$(BIN)/coop db upgrade
	$(BIN)/coop demo
	$(BIN)/coop serve

# Two processes (the machine's two cores); a test module stays in one process, so its browser
# and live server are started once.
PYTEST_WORKERS ?= 3
test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The container image's layout without Docker (tests/test_image.py): the Dockerfile's steps in a
# fresh virtualenv, then each compose service's command. About two minutes; .ci/run runs it.
test-image: install
	$(BIN)/python -m pytest -p no:xdist -m image tests/test_image.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/gap.py ../shared/data/gap/gap?.txt
	$(BIN)/python bench/matching_scale.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
