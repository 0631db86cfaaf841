# The two commands: `make run` (the whole system) and `make test` (the whole suite).
PY := .venv/bin/python

.PHONY: setup run test bench lint evaluate

setup:
	bash scripts/setup.sh

run: setup
	$(PY) -m hub.run

test: setup
	rm -rf var/test-logs  # each run's hub and Rasa logs, fresh
	$(PY) -m pytest -p no:cacheprovider -rs
	# the whole running system once more on PostgreSQL (unit tests above already run on both)
	TEST_SYSTEM_DB=postgresql $(PY) -m pytest -p no:cacheprovider -rs tests/handoff/test_spine_flow.py tests/security

bench: setup
	$(PY) -m bench.chat_latency
	$(PY) -m bench.answer_latency
	$(PY) -m bench.wechat_push
	$(PY) -m bench.handoff_latency

lint:
	$(PY) -m ruff check .

evaluate: setup
	for d in $(or $(DIR),kb_sync/demo kb_sync/evalsets/demo-realistic); do $(PY) -m kb_sync.evaluate $$d || exit 1; done
