"""make local's stand-in for the EventBridge rule and schedule that feed
the integrations function on AWS: a rule on the emulator's bus sends
Milepost's events to a queue (moto delivers rule targets), and this loop
hands each to the function, as Lambda's asynchronous invocation would (one
that fails stays on the queue and comes again), and asks it for the
retries that are due every MILEPOST_LOCAL_RETRIES_SECONDS (60).

    local_bus.py INVOKE_URL    (cargo lambda watch's address)
"""

import json
import os
import sys
import time
import urllib.request

import boto3


def invoke(base, payload):
    request = urllib.request.Request(
        f"{base}/2015-03-31/functions/integrations/invocations",
        data=payload.encode(), method="POST", headers={"content-type": "application/json"},
    )
    # The first invocation builds the function.
    with urllib.request.urlopen(request, timeout=900) as answer:
        return answer.status, answer.read().decode()


def main():
    base = sys.argv[1]
    bus = os.environ["MILEPOST_BUS"]
    every = float(os.environ.get("MILEPOST_LOCAL_RETRIES_SECONDS", "60"))
    region = os.environ.get("AWS_REGION", "us-east-1")
    events = boto3.client("events", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    queue = sqs.create_queue(QueueName=f"{bus}-integrations")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="milepost-integrations", EventBusName=bus, EventPattern=json.dumps({"source": ["milepost"]}))
    events.put_targets(Rule="milepost-integrations", EventBusName=bus, Targets=[{"Id": "integrations", "Arn": arn}])
    print("integrations: the bus's events go to the integrations function", flush=True)
    last_retries = 0.0
    while True:
        # No long polling: the emulator serves one request at a time.
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages", [])
        for message in messages:
            try:
                status, body = invoke(base, message["Body"])
            except Exception as e:  # noqa: BLE001 - retried when the message comes back
                print(f"integrations: invocation failed ({e}); retried in 30 s", flush=True)
                continue
            if status == 200 and '"errorType"' not in body:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                detail_type = json.loads(message["Body"]).get("detail-type")
                print(f"integrations: {detail_type} {body}", flush=True)
            else:
                print(f"integrations: the function failed ({body}); retried in 30 s", flush=True)
        if time.time() - last_retries >= every:
            last_retries = time.time()
            try:
                invoke(base, '{"part": "retries"}')
            except Exception as e:  # noqa: BLE001 - the next turn asks again
                print(f"integrations: the retries run failed ({e})", flush=True)
        if not messages:
            time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
