#!/usr/bin/env node
// Runs the escalation state machine (the real ASL file) outside AWS with
// aws-local-stepfunctions. Its Task states call Milepost's functions through
// `invoke`; its Wait states wait until their timestamps, compressed by a factor.
//
//   node run-local.mjs stdio ASL_FILE
//     One execution. Reads {"name", "input"} as the first line of stdin; each
//     task invocation is written to stdout as {"type":"invoke","id",
//     "function","payload"} and answered on stdin with {"id","result"} or
//     {"id","error":{"type","message"}}. Waits and retry pauses take no time.
//     Every execution event is written as {"type":"event","event","state",
//     "error"}; the last line
//     is {"type":"done","status","end_state","output"}. The workflow test
//     drives this mode with the Rust handlers.
//
//   node run-local.mjs emulator ASL_FILE
//     `make local`: polls the emulator's Step Functions (AWS_ENDPOINT_URL) for
//     executions of MILEPOST_STATE_MACHINE_ARN and runs each one, its tasks
//     invoking the functions `cargo lambda watch` serves at MILEPOST_LAMBDA_URL.
//     A day of the playbook takes 86400/MILEPOST_TIME_FACTOR seconds (default
//     1440: a day becomes a minute). An execution stopped on the emulator
//     (StopExecution, as ingestion does when the customer catches up) is
//     aborted here too.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { StateMachine } from "aws-local-stepfunctions";

// The ARNs SAM substitutes into the definition (DefinitionSubstitutions), as
// local names: the functions cargo lambda watch serves.
const FUNCTIONS = {
  OutreachFunctionArn: "outreach",
  CsmTaskFunctionArn: "csm-task",
  EscalateFunctionArn: "escalate",
};

export function loadDefinition(path) {
  let text = readFileSync(path, "utf8");
  for (const [placeholder, name] of Object.entries(FUNCTIONS)) {
    text = text.replaceAll("${" + placeholder + "}", `arn:aws:lambda:us-east-1:123456789012:function:${name}`);
  }
  const left = text.match(/\$\{[A-Za-z]+\}/);
  if (left) throw new Error(`${path}: no local value for ${left[0]}`);
  return JSON.parse(text);
}

/** The value at a `$.a.b` path of `input`. */
function at(input, path) {
  return path.replace(/^\$\.?/, "").split(".").filter(Boolean).reduce((v, k) => v?.[k], input);
}

/** An Error that Step Functions' Retry and Catch match by `name`. */
function taskError(type, message) {
  const e = new Error(message);
  e.name = type;
  return e;
}

/**
 * Runs one execution. `invoke(functionName, payload)` returns the function's
 * result or throws a `taskError`; `waitMs(stateName, timestamp)` says how long
 * a Wait state waits (read when the state is entered).
 */
export function startExecution({ definition, name, input, invoke, waitMs, retryPauseMs }) {
  const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  const taskHandlers = {};
  const waits = {};
  const retryPauses = {};
  // What the last task answered: a deferral's Wait reads its time from `$.last`.
  let last = null;
  for (const [stateName, state] of Object.entries(definition.States)) {
    if (state.Type === "Task") {
      // What the lambda:invoke integration does: call the function with Payload, return {Payload}.
      taskHandlers[stateName] = async (params) => {
        const fn = String(params.FunctionName).split(":").pop();
        const payload = await invoke(fn, params.Payload);
        last = payload;
        return { StatusCode: 200, Payload: payload };
      };
      if (retryPauseMs !== undefined) retryPauses[stateName] = retryPauseMs;
    }
    if (state.Type === "Wait" && state.TimestampPath) {
      Object.defineProperty(waits, stateName, {
        enumerable: true,
        get: () =>
          waitMs(
            stateName,
            state.TimestampPath.startsWith("$.last.")
              ? at(last, state.TimestampPath.replace(/^\$\.last/, "$"))
              : at(input, state.TimestampPath),
          ),
      });
    }
  }
  return machine.run(input, {
    overrides: { taskResourceLocalHandlers: taskHandlers, waitTimeOverrides: waits, retryIntervalOverrides: retryPauses },
    context: { Execution: { Name: name } },
    noThrowOnAbort: true,
  });
}

/** Follows an execution's events; resolves to its end: status, last state entered, output. */
async function follow(execution, onEvent) {
  let endState = null;
  for await (const event of execution.eventLogs) {
    onEvent?.(event);
    if (event.type === "StateEntered") endState = event.state.name;
  }
  try {
    const output = await execution.result;
    return output === null ? { status: "ABORTED", endState } : { status: "SUCCEEDED", endState, output };
  } catch (e) {
    return { status: "FAILED", endState, error: e.name, cause: e.message };
  }
}

async function stdioMode(aslPath) {
  const definition = loadDefinition(aslPath);
  const lines = createInterface({ input: process.stdin });
  const pending = new Map();
  let nextId = 0;
  let start;
  const started = new Promise((resolve) => (start = resolve));
  lines.on("line", (line) => {
    const msg = JSON.parse(line);
    if (msg.input !== undefined && msg.id === undefined) return start(msg);
    const waiter = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) waiter.reject(taskError(msg.error.type, msg.error.message));
    else waiter.resolve(msg.result);
  });
  const write = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
  const { name, input } = await started;
  const invoke = (fn, payload) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      write({ type: "invoke", id, function: fn, payload });
    });
  const execution = startExecution({ definition, name, input, invoke, waitMs: () => 0, retryPauseMs: 0 });
  // Events without their state data (the test reads names and errors, not payloads).
  const end = await follow(execution, (event) =>
    write({ type: "event", event: event.type, state: event.state?.name, error: event.Error }),
  );
  write({ type: "done", status: end.status, end_state: end.endState, output: end.output ?? null, error: end.error });
  lines.close();
}

// --- emulator mode ----------------------------------------------------------

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`${name} is not set (source .milepost-local.env)`);
  return value;
}

/** One Step Functions API call to the emulator (which checks no signature). */
async function sfn(endpoint, region, action, body) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.0",
      "X-Amz-Target": `AWSStepFunctions.${action}`,
      Authorization: `AWS4-HMAC-SHA256 Credential=testing/20260101/${region}/states/aws4_request, SignedHeaders=host, Signature=0`,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${action}: HTTP ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/** Invokes a function served by `cargo lambda watch` (the Lambda Invoke API). */
async function invokeWatched(lambdaUrl, fn, payload) {
  let response;
  try {
    response = await fetch(`${lambdaUrl}/2015-03-31/functions/${fn}/invocations`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
  } catch (e) {
    throw taskError("Lambda.ServiceException", `cargo lambda watch unreachable: ${e.message}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw taskError("Lambda.ServiceException", `${fn}: HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok || response.headers.get("x-amz-function-error") || body?.errorType) {
    throw taskError(body?.errorType ?? "Lambda.ServiceException", body?.errorMessage ?? `${fn}: HTTP ${response.status}`);
  }
  return body;
}

async function emulatorMode(aslPath) {
  const definition = loadDefinition(aslPath);
  const endpoint = env("AWS_ENDPOINT_URL");
  const region = env("AWS_DEFAULT_REGION", env("AWS_REGION", "us-east-1"));
  const stateMachineArn = env("MILEPOST_STATE_MACHINE_ARN");
  const lambdaUrl = env("MILEPOST_LAMBDA_URL", "http://127.0.0.1:9000");
  const factor = Number(env("MILEPOST_TIME_FACTOR", "1440"));
  if (!(factor >= 1)) throw new Error("MILEPOST_TIME_FACTOR must be a number >= 1");
  const log = (msg) => console.log(`[escalations] ${msg}`);
  const running = new Map(); // execution ARN -> local execution
  const seen = new Set();
  log(`running executions of ${stateMachineArn.split(":").pop()}; a playbook day takes ${(86400 / factor).toFixed(0)} s`);

  const run = async (summary) => {
    const described = await sfn(endpoint, region, "DescribeExecution", { executionArn: summary.executionArn });
    const input = JSON.parse(described.input);
    // Playbook time starts at the miss; real time at the start of this run.
    const origin = Date.parse(input.missed_at);
    const startedReal = Date.now();
    const waitMs = (_state, timestamp) => {
      const due = startedReal + Math.max(0, Date.parse(timestamp) - origin) / factor;
      return Math.max(0, Math.round(due - Date.now()));
    };
    // The playbook's time now, compressed as the waits are: the functions
    // (MILEPOST_PLAYBOOK_CLOCK=local) run each step at it.
    const playbookNow = () => new Date(origin + (Date.now() - startedReal) * factor).toISOString();
    const invoke = (fn, payload) => invokeWatched(lambdaUrl, fn, { ...payload, playbook_now: playbookNow() });
    const execution = startExecution({ definition, name: summary.name, input, invoke, waitMs, retryPauseMs: 1000 });
    running.set(summary.executionArn, execution);
    log(`${summary.name}: started`);
    const end = await follow(execution, (event) => {
      if (event.type === "StateEntered" && definition.States[event.state.name].Type === "Task") {
        log(`${summary.name}: ${event.state.name}`);
      }
      if (event.type === "StateRetried") log(`${summary.name}: ${event.state.name} retried (${event.retry?.attempt ?? "?"})`);
      if (event.type === "StateCaught") log(`${summary.name}: ${event.state.name} failed, caught`);
    });
    running.delete(summary.executionArn);
    const how = end.status === "SUCCEEDED" ? `ended in ${end.endState}` : end.status.toLowerCase();
    log(`${summary.name}: ${how}`);
  };

  for (;;) {
    try {
      let token;
      do {
        const page = await sfn(endpoint, region, "ListExecutions", { stateMachineArn, nextToken: token });
        for (const summary of page.executions ?? []) {
          if (summary.status === "RUNNING" && !seen.has(summary.executionArn)) {
            seen.add(summary.executionArn);
            run(summary).catch((e) => log(`${summary.name}: ${e.message}`));
          } else if (summary.status !== "RUNNING" && running.has(summary.executionArn)) {
            log(`${summary.name}: stopped on the emulator (${summary.status.toLowerCase()}); aborting`);
            running.get(summary.executionArn).abort();
          }
        }
        token = page.nextToken;
      } while (token);
    } catch (e) {
      log(`polling the emulator: ${e.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

const [mode, aslPath] = process.argv.slice(2);
const modes = { stdio: stdioMode, emulator: emulatorMode };
if (!modes[mode] || !aslPath) {
  console.error("usage: run-local.mjs stdio|emulator ASL_FILE");
  process.exit(2);
}
modes[mode](aslPath).catch((e) => {
  console.error(`run-local: ${e.message}`);
  process.exit(1);
});
