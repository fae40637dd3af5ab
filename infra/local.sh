#!/usr/bin/env bash
# `make local`: Milepost on this machine against the AWS emulator, until Ctrl-C.
#
# Starts moto on a free loopback port, creates the table, event bus and
# escalation state machine as the SAM template defines them, loads
# examples/maps/, writes .milepost-local.env for other shells, serves the
# functions with `cargo lambda watch` (the webhook at
# http://127.0.0.1:$MILEPOST_LOCAL_PORT/lambda-url/ingest/v1/events) and the
# ingest handler's tracking API on a port of its own, and runs
# every escalation the sweep starts over the real ASL file
# (infra/statemachine/run-local.mjs), a playbook day lasting
# 86400/MILEPOST_TIME_FACTOR seconds (default 1440: a day is a minute).
# Everything it started stops when it stops; .milepost-local.env goes with it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
INVOKE_PORT=${MILEPOST_LOCAL_PORT:-9000}
export MILEPOST_TIME_FACTOR=${MILEPOST_TIME_FACTOR:-1440}
ENV_FILE=.milepost-local.env
LOG_DIR=target/milepost-local
mkdir -p "$LOG_DIR"

pids=()
stop() {
    # A second Ctrl-C while stopping must not cut the stopping short.
    trap '' INT TERM HUP
    trap - EXIT
    for pid in "${pids[@]}"; do
        # Each child leads its own process group (setsid): stop the group, so
        # the function processes cargo lambda spawned stop too.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    # Whatever has not stopped within five seconds is killed.
    for _ in $(seq 50); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$ENV_FILE"
    echo "milepost local: stopped"
}
trap stop EXIT
trap 'exit 130' INT TERM HUP

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_open "$INVOKE_PORT"; then
    echo "port $INVOKE_PORT is taken: set MILEPOST_LOCAL_PORT to a free one" >&2
    exit 1
fi
free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(free_port)
tracking_port=$(free_port)
console_port=${MILEPOST_CONSOLE_PORT:-$(free_port)}
oidc_port=$(free_port)

# One request at a time: threaded moto does not make conditional writes atomic.
setsid "$VENV/bin/python" tests/moto_serial.py -H 127.0.0.1 -p "$moto_port" >"$LOG_DIR/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do port_open "$moto_port" && break; sleep 0.1; done
port_open "$moto_port" || { echo "moto did not start: see $LOG_DIR/moto.log" >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
export MILEPOST_TABLE=milepost-local
export MILEPOST_BUS=milepost-local
export MILEPOST_INGEST_URL="http://127.0.0.1:$INVOKE_PORT/lambda-url/ingest/v1/events"
# Where the Segment and RudderStack SDKs send (their host; they add /v1/batch),
# and the development write key. The ingest handler serves it from its own
# small server (functions/ingest/examples/tracking_server.rs): cargo lambda
# watch cannot pass a gzipped body to a function.
export MILEPOST_TRACKING_URL="http://127.0.0.1:$tracking_port"
export MILEPOST_WRITE_KEY=${MILEPOST_LOCAL_WRITE_KEY:-milepost-local-write-key}
# The CSM emails' buttons point here (served by the actions function).
export MILEPOST_ACTIONS_URL="http://127.0.0.1:$INVOKE_PORT/lambda-url/actions/v1/actions"
# Customer mail's unsubscribe links point here (the actions function too).
export MILEPOST_UNSUBSCRIBE_URL="http://127.0.0.1:$INVOKE_PORT/lambda-url/actions/v1/unsubscribe"
# Development secrets and link key (documented defaults unless MILEPOST_LOCAL_* are set).
export MILEPOST_LOCAL=1
# The console, signing people in through a real OpenID provider on loopback
# (infra/oidc-local.mjs: the certified oidc-provider package; any password).
export MILEPOST_CONSOLE_URL="http://127.0.0.1:$console_port"
export MILEPOST_OIDC_ISSUER="http://127.0.0.1:$oidc_port"
export MILEPOST_OIDC_CLIENT_ID=milepost-console
export MILEPOST_LOCAL_OIDC_CLIENT_SECRET=milepost-local-console-secret
export MILEPOST_CONSOLE_ACCESS='{"allowed_domains": ["vendor.example"], "leads": ["cs-leadership@vendor.example"], "csms": ["maya@vendor.example"]}'
# Playbook days are compressed here but the functions' clocks are not, so a
# customer email held for tomorrow 09:00 would wait real hours: the contact
# policy is off locally (the demo and the tests run it).
export MILEPOST_CONTACT_POLICY=off
# The playbook functions take each step's time from the executor, in
# compressed playbook time, so what a step waits for (the sponsor's email a
# business day after leadership's, the reminders after a lapse) comes.
export MILEPOST_PLAYBOOK_CLOCK=local
# Slack: a stand-in for its Web API on loopback (tests/slack_standin.py:
# it records what Slack would receive and answers as Slack does), the
# development bot token and signing secret, the team's channel; Maya is a
# Slack user. Its record: $LOG_DIR/slack-calls.jsonl.
export MILEPOST_LOCAL_SLACK_TOKEN=${MILEPOST_LOCAL_SLACK_TOKEN:-xoxb-milepost-local}
export MILEPOST_LOCAL_SLACK_SIGNING_SECRET=${MILEPOST_LOCAL_SLACK_SIGNING_SECRET:-milepost-local-slack-signing-secret}
export MILEPOST_SLACK_TEAM_CHANNEL=C_CS_TEAM
export MILEPOST_SLACK_INTERACTIONS_URL="http://127.0.0.1:$INVOKE_PORT/lambda-url/actions/v1/slack/interactions"
: >"$LOG_DIR/slack-calls.jsonl"
rm -f "$LOG_DIR/slack.port"
setsid "$VENV/bin/python" tests/slack_standin.py --record "$LOG_DIR/slack-calls.jsonl" \
    --users maya@vendor.example=U_MAYA >"$LOG_DIR/slack.port" 2>"$LOG_DIR/slack.log" &
pids+=($!)
for _ in $(seq 300); do [ -s "$LOG_DIR/slack.port" ] && break; sleep 0.1; done
slack_port=$(head -n1 "$LOG_DIR/slack.port")
[ -n "$slack_port" ] || { echo "the Slack stand-in did not start: see $LOG_DIR/slack.log" >&2; exit 1; }
export MILEPOST_SLACK_API_URL="http://127.0.0.1:$slack_port"
# HubSpot: a stand-in for its CRM API on loopback (tests/hubspot_standin.py:
# it records what HubSpot would receive and keeps what the calls made), a
# development private app token; Acme Inc's company (acme.example) and Maya
# as a HubSpot user. Its record: $LOG_DIR/hubspot-calls.jsonl.
export MILEPOST_LOCAL_HUBSPOT_TOKEN=${MILEPOST_LOCAL_HUBSPOT_TOKEN:-pat-milepost-local}
export MILEPOST_HUBSPOT_RENEWAL_STAGES=closedwon=renewed,closedlost=churned
: >"$LOG_DIR/hubspot-calls.jsonl"
rm -f "$LOG_DIR/hubspot.port"
setsid "$VENV/bin/python" tests/hubspot_standin.py --record "$LOG_DIR/hubspot-calls.jsonl" \
    --companies acme.example=101 --owners maya@vendor.example=501 >"$LOG_DIR/hubspot.port" 2>"$LOG_DIR/hubspot.log" &
pids+=($!)
for _ in $(seq 300); do [ -s "$LOG_DIR/hubspot.port" ] && break; sleep 0.1; done
hubspot_port=$(head -n1 "$LOG_DIR/hubspot.port")
[ -n "$hubspot_port" ] || { echo "the HubSpot stand-in did not start: see $LOG_DIR/hubspot.log" >&2; exit 1; }
export MILEPOST_HUBSPOT_API_URL="http://127.0.0.1:$hubspot_port"

# Where cargo puts what make local builds: target/debug, or under the
# triple make test names (CARGO_BUILD_TARGET; see the Makefile), linked from
# target/debug so the documentation's commands run as written.
bin_dir=target/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}debug
if [ "$bin_dir" != target/debug ]; then
    mkdir -p target/debug
    ln -sfn "$PWD/$bin_dir/milepost" target/debug/milepost
fi
milepost=$bin_dir/milepost
MILEPOST_STATE_MACHINE_ARN=$("$milepost" local init)
export MILEPOST_STATE_MACHINE_ARN
"$milepost" maps load examples/maps

{
    echo "# Written by make local; removed when it stops. Use: source $ENV_FILE"
    for name in AWS_ENDPOINT_URL AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
        MILEPOST_TABLE MILEPOST_BUS MILEPOST_STATE_MACHINE_ARN MILEPOST_INGEST_URL MILEPOST_TRACKING_URL MILEPOST_WRITE_KEY \
        MILEPOST_ACTIONS_URL MILEPOST_UNSUBSCRIBE_URL MILEPOST_CONSOLE_URL \
        MILEPOST_SLACK_API_URL MILEPOST_SLACK_INTERACTIONS_URL MILEPOST_SLACK_TEAM_CHANNEL MILEPOST_HUBSPOT_API_URL; do
        echo "export $name=${!name}"
    done
} >"$ENV_FILE"

# It restarts the functions when a file it watches changes: .cargolambdaignore
# keeps that to what is compiled into them (not `make local > local.log`).
PATH="$PWD/$VENV/bin:$PATH" setsid cargo lambda watch --quiet --invoke-address 127.0.0.1 \
    --invoke-port "$INVOKE_PORT" > >(tee "$LOG_DIR/functions.log") 2>&1 &
pids+=($!)
for _ in $(seq 600); do port_open "$INVOKE_PORT" && break; sleep 0.1; done
port_open "$INVOKE_PORT" || { echo "cargo lambda watch did not start: see $LOG_DIR/functions.log" >&2; exit 1; }

MILEPOST_TRACKING_PORT=$tracking_port setsid "$bin_dir/examples/tracking_server" \
    > >(tee "$LOG_DIR/tracking.log") 2>&1 &
pids+=($!)
for _ in $(seq 100); do port_open "$tracking_port" && break; sleep 0.1; done
port_open "$tracking_port" || { echo "the tracking API did not start: see $LOG_DIR/tracking.log" >&2; exit 1; }

setsid "$VENV/nodejs/bin/node" infra/oidc-local.mjs "$oidc_port" "$MILEPOST_CONSOLE_URL" \
    >"$LOG_DIR/oidc.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do port_open "$oidc_port" && break; sleep 0.1; done
port_open "$oidc_port" || { echo "the OpenID provider did not start: see $LOG_DIR/oidc.log" >&2; exit 1; }
setsid "$milepost" console --stack --port "$console_port" > >(tee "$LOG_DIR/console.log") 2>&1 &
pids+=($!)
for _ in $(seq 100); do port_open "$console_port" && break; sleep 0.1; done
port_open "$console_port" || { echo "the console did not start: see $LOG_DIR/console.log" >&2; exit 1; }

# EventBridge's rule and schedule for the integrations function (webhooks, Slack, HubSpot).
setsid "$VENV/bin/python" infra/local_bus.py "http://127.0.0.1:$INVOKE_PORT" \
    > >(tee "$LOG_DIR/integrations.log") 2>&1 &
pids+=($!)

# Step Functions on the emulator records executions; this runs them.
MILEPOST_LAMBDA_URL="http://127.0.0.1:$INVOKE_PORT" setsid "$VENV/nodejs/bin/node" \
    infra/statemachine/run-local.mjs emulator infra/statemachine/escalation.asl.json \
    > >(tee "$LOG_DIR/escalations.log") 2>&1 &
pids+=($!)

cat <<EOF
milepost local: running (Ctrl-C stops everything)
  webhook   $MILEPOST_INGEST_URL
  tracking  $MILEPOST_TRACKING_URL (Segment and RudderStack SDKs: host, write key $MILEPOST_WRITE_KEY)
  console   $MILEPOST_CONSOLE_URL/ (sign in as maya@vendor.example, cs-leadership@vendor.example
            or anyone@vendor.example, any password)
  actions   $MILEPOST_ACTIONS_URL/<token> (the CSM emails' buttons)
            $MILEPOST_UNSUBSCRIBE_URL/<token> (customer mail's unsubscribe links)
  emulator  $AWS_ENDPOINT_URL (table $MILEPOST_TABLE, bus $MILEPOST_BUS)
  playbook  escalations run here, a playbook day every $((86400 / MILEPOST_TIME_FACTOR)) s (MILEPOST_TIME_FACTOR=$MILEPOST_TIME_FACTOR)
  emails    target/debug/milepost outbox
  webhooks  target/debug/milepost webhooks add URL (the bus's events go to the integrations function)
  slack     a stand-in at $MILEPOST_SLACK_API_URL: tasks posted to Maya and #cs-team, recorded in $LOG_DIR/slack-calls.jsonl
  hubspot   a stand-in at $MILEPOST_HUBSPOT_API_URL: Acme's company kept up to date, tasks mirrored ($MILEPOST_HUBSPOT_API_URL/_state),
            recorded in $LOG_DIR/hubspot-calls.jsonl
  logs      below (and $LOG_DIR/functions.log, escalations.log); the emulator's in $LOG_DIR/moto.log
In another shell: source $ENV_FILE, then follow docs/local.md ("Run it locally").
EOF
# Returns when a child exits (or on Ctrl-C, through the trap).
wait -n
echo "milepost local: a process exited: see $LOG_DIR/" >&2
exit 1
