# The two commands: `make run` (the whole system) and `make test` (the whole suite); `make lint` checks.
PY := .venv/bin/python

.PHONY: setup run test bench lint evaluate fuzz

setup:
	bash scripts/setup.sh

run: setup
	$(PY) -m hub.run

test: setup
	rm -rf var/test-logs  # each run's hub and Rasa logs, fresh
	$(PY) -m pytest -p no:cacheprovider -rs
	# the whole running system once more on PostgreSQL (unit tests above already run on both)
	TEST_SYSTEM_DB=postgresql $(PY) -m pytest -p no:cacheprovider -rs tests/handoff/test_spine_flow.py tests/security

# property-based fuzzing of every parser a stranger can reach, ~110,000 cases (the suite runs ~2,200)
fuzz: setup
	FUZZ_EXAMPLES=25000 $(PY) -m pytest -p no:cacheprovider -q tests/reliability/test_fuzz_parsers.py

bench: setup
	$(PY) -m bench.chat_latency
	$(PY) -m bench.answer_latency
	$(PY) -m bench.wechat_push
	$(PY) -m bench.handoff_latency

# ruff, the import layers (pyproject.toml [tool.importlinter]) and types on core/ and flow/ ([tool.mypy])
lint:
	ZWKF_SKIP_TRAIN=1 bash scripts/setup.sh
	@# all three run, so one run shows every finding; any failure fails the target
	@status=0; \
	$(PY) -m ruff check . || status=1; \
	.venv/bin/lint-imports --cache-dir var/import-linter-cache || status=1; \
	$(PY) -m mypy || status=1; \
	exit $$status

evaluate: setup
	for d in $(or $(DIR),kb_sync/demo kb_sync/evalsets/demo-realistic); do $(PY) -m kb_sync.evaluate $$d || exit 1; done
