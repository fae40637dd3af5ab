#!/usr/bin/env python3
"""What `sam validate --lint` does not check in infra/template.yaml, and a
deployment needs: every function has a log group with retention and a
failure that cannot go unseen (an alarm, or a destination); IAM names its
resources (no "*" except where AWS allows nothing else, and no wildcard
actions); the outputs users look for exist. Run by `make validate`.
Exits 1 listing every problem."""

import sys

from cfnlint.decode import decode  # cfn-lint's loader understands !Ref, !Sub, ...

TEMPLATE = sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml"
# Step Functions' log delivery actions accept no resource ARN.
STAR_ALLOWED = {"ExecutionLogDelivery"}
OUTPUTS = {"WebhookUrl", "TrackingApiUrl", "BusName", "TableName"}
# What functions/ingest serves (lib.rs and tracking.rs): each must be an HTTP API route.
INGEST_ROUTES = {"/v1/events", "/v1/milestones/confirm", "/v1/batch", "/v1/track", "/v1/identify", "/v1/group"}


def refs(value):
    """Every logical id a value refers to (Ref, GetAtt, or ${Name} in Sub)."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found.update(part.split("}")[0].split(".")[0] for part in text.split("${")[1:])
            found.update(refs(inner))
    elif isinstance(value, list):
        for inner in value:
            found.update(refs(inner))
    return found


def statements(resource):
    props = resource.get("Properties", {})
    for policy in props.get("Policies", []) if isinstance(props.get("Policies"), list) else []:
        if isinstance(policy, dict):
            yield from policy.get("Statement", [])
    document = props.get("PolicyDocument")
    if document:
        yield from document.get("Statement", [])


def main():
    template, matches = decode(TEMPLATE)
    if matches:
        sys.exit(f"{TEMPLATE}: {matches}")
    resources = template["Resources"]
    problems = []

    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    log_groups = {name: r for name, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    alarmed = set().union(*(refs(a["Properties"]) for a in alarms)) if alarms else set()
    for fn in functions:
        groups = [g for g in log_groups.values() if fn in refs(g["Properties"].get("LogGroupName", ""))]
        if not groups:
            problems.append(f"{fn}: no log group (its logs would be kept forever)")
        elif not all("RetentionInDays" in g["Properties"] for g in groups):
            problems.append(f"{fn}: log group without RetentionInDays")
        if fn not in alarmed:
            problems.append(f"{fn}: no alarm watches its errors")
        metadata = resources[fn].get("Metadata", {})
        if metadata.get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{fn}: not built with rust-cargolambda")

    for name, resource in resources.items():
        for st in statements(resource):
            if st.get("Effect") != "Allow":
                continue
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            for action in actions:
                if "*" in action:
                    problems.append(f"{name}/{st.get('Sid')}: wildcard action {action}")
            writes = [a for a in actions if a in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")]
            leading = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            if writes and not leading:
                problems.append(f"{name}/{st.get('Sid')}: {writes} on any key: condition them on dynamodb:LeadingKeys (the key prefixes it owns)")
            targets = st.get("Resource", [])
            targets = [targets] if not isinstance(targets, list) else targets
            if "*" in targets and st.get("Sid") not in STAR_ALLOWED:
                problems.append(f"{name}/{st.get('Sid')}: Resource \"*\" where a resource can be named")

    if not any("EscalationStateMachine" in refs(a["Properties"]) for a in alarms):
        problems.append("no alarm on failed escalation executions")
    if not any(a["Properties"].get("MetricName") == "SweepLagSeconds" for a in alarms):
        problems.append("no alarm on sweep lag")
    if not any(a["Properties"].get("Namespace") == "AWS/ApiGateway"
               and a["Properties"].get("MetricName") == "5xx"
               and "HttpApi" in refs(a["Properties"]) for a in alarms):
        problems.append("no alarm on the webhook's 5xx answers (AWS/ApiGateway 5xx of the HTTP API)")
    ingest_events = template["Resources"]["IngestFunction"]["Properties"].get("Events", {}).values()
    routed = {e["Properties"]["Path"] for e in ingest_events if e["Type"] == "HttpApi" and e["Properties"].get("Method") == "POST"}
    if routed != INGEST_ROUTES:
        problems.append(f"IngestFunction's POST routes {sorted(routed)} are not what it serves {sorted(INGEST_ROUTES)}")
    missing = OUTPUTS - set(template.get("Outputs", {}))
    if missing:
        problems.append(f"outputs missing: {sorted(missing)}")

    if problems:
        print(f"{TEMPLATE}: {len(problems)} problem(s)", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"{TEMPLATE}: {len(functions)} functions with log groups and alarms, "
          f"{len(alarms)} alarms, IAM resources named, ingest's {len(INGEST_ROUTES)} routes, outputs {sorted(OUTPUTS)}")


if __name__ == "__main__":
    main()
