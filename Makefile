# make test  - the test suite (lint, format check, mypy, pytest); pytest args: make test ARGS='-k seats'
# make run   - run the service (licenses serve); options: make run ARGS='--port 8001'
# make ci    - what CI runs: installs missing servers, starts PostgreSQL + Redis, tests twice
.PHONY: run test ci

ARGS ?=

run:
	bash scripts/run $(ARGS)

test:
	bash scripts/test $(ARGS)

ci:
	bash .ci/run
