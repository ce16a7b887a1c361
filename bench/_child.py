"""A fresh process for the cold-start and memory benchmarks (run as a script, never imported by them).

Usage: python bench/_child.py RESULT_PATH MODE [ARGS...]. The environment (moto endpoint, the function's
template variables) comes from the parent. The result is written as JSON to RESULT_PATH; the handlers' own
stdout is the parent's /dev/null.

The clock starts at the first line, after the interpreter and `site` are up (identical for every mode), and
stops after the first response: what Lambda reports as Init Duration plus the first invocation's Duration.
Both modes run the same preamble, so the ratio compares like with like.
"""

import time

T0 = time.perf_counter()

import importlib.util  # noqa: E402 - after the clock starts, on purpose
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


class _Context:
    """The attributes Powertools reads from a LambdaContext (stdlib only, so it costs nothing to import)."""

    def __init__(self, function_name: str, memory_mb: int) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _load_handler(module_path: str, layer_path: str) -> Any:
    # Lambda puts the function's code root and the layer's /opt/python on sys.path; so does this.
    sys.path[:0] = [str(Path(module_path).parent), layer_path]
    spec = importlib.util.spec_from_file_location("app", module_path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


def _memory_kb() -> dict[str, int]:
    """Peak (VmHWM) and current (VmRSS) resident set size of this process, from /proc."""
    values: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0])
    return values


def _consumer_event(template_body: str, order_id: int, queue_arn: str) -> dict[str, Any]:
    message = json.loads(template_body)
    message["orderId"] = str(order_id)
    message["deliveryId"] = f"wh-{order_id}"
    message["eventId"] = f"evt-wh-{order_id}"
    for index, admission in enumerate(message["admissions"]):
        admission["distributionId"] = f"queue_{order_id}"
        admission["consumerId"] = f"cons_{order_id}_{index}"
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"bench-{uuid.uuid4().hex}",
                "body": json.dumps(message, separators=(",", ":")),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDALOCAL",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def _check(response: Any) -> None:
    # A failed invocation would measure the wrong thing: stop the benchmark instead.
    if isinstance(response, dict) and "statusCode" in response:
        if response["statusCode"] != 200:
            raise RuntimeError(f"handler answered {response['statusCode']}: {response.get('body')}")
    elif isinstance(response, dict) and response.get("batchItemFailures"):
        raise RuntimeError(f"batch had failures: {response['batchItemFailures']}")


def main() -> dict[str, Any]:
    mode = sys.argv[2]
    if mode == "boto3":
        import boto3

        imported = time.perf_counter() - T0
        boto3.client("sqs")
        return {"seconds": time.perf_counter() - T0, "import_seconds": imported}
    if mode == "consumer_floor":
        # The least any consumer of this design pays for its first batch, with none of fanfare_sync's code:
        # the packages it cannot skip (boto3, httpx, Powertools' idempotency utility, pydantic), its two
        # clients, and the round trips of one record: the credentials read, the order read, the idempotency
        # put and update, the Fanfare call, the order write.
        import ssl

        import boto3
        import httpx
        from aws_lambda_powertools.utilities.idempotency import idempotent_function  # noqa: F401
        from pydantic import ValidationError  # noqa: F401

        session = boto3.session.Session()
        dynamodb = session.client("dynamodb")
        secrets = session.client("secretsmanager")
        imported = time.perf_counter() - T0
        secrets.get_secret_value(SecretId=os.environ["FANFARE_CREDENTIALS_SECRET_ARN"])
        order_key = {"pk": {"S": f"ORDER#floor#{uuid.uuid4().hex}"}, "sk": {"S": "ORDER"}}
        dynamodb.get_item(TableName=os.environ["ORDERS_TABLE"], Key=order_key)
        record_key = {"id": {"S": f"floor#{uuid.uuid4().hex}"}}
        idempotency_table = os.environ["IDEMPOTENCY_TABLE"]
        dynamodb.put_item(TableName=idempotency_table, Item={**record_key, "status": {"S": "INPROGRESS"}})
        fanfare_url = f"{os.environ['FANFARE_API_URL']}/queues/floor/complete"
        # As the consumer builds it: no CA bundle for plain http (the local sandbox), certifi's otherwise.
        plain_http = fanfare_url.startswith("http://")
        verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if plain_http else True
        with httpx.Client(timeout=5, verify=verify) as fanfare:
            fanfare.post(fanfare_url, json={"consumerId": "floor"})
        dynamodb.update_item(
            TableName=idempotency_table,
            Key=record_key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "COMPLETED"}},
        )
        dynamodb.update_item(
            TableName=os.environ["ORDERS_TABLE"],
            Key=order_key,
            UpdateExpression="SET syncStatus = :s",
            ExpressionAttributeValues={":s": {"S": "synced"}},
        )
        return {"seconds": time.perf_counter() - T0, "import_seconds": imported}
    spec = json.loads(Path(sys.argv[3]).read_text(encoding="utf-8"))
    handler = _load_handler(spec["module_path"], spec["layer_path"])
    # The module's import includes what it builds at import (clients, the endpoint): Lambda's init phase.
    imported = time.perf_counter() - T0
    context = _Context(spec["function_name"], spec["memory_mb"])
    if mode == "cold":
        _check(handler(spec["event"], context))
        return {"seconds": time.perf_counter() - T0, "import_seconds": imported}
    if mode == "memory":
        marks: dict[str, dict[str, int]] = {}
        order_id = int(spec.get("first_order_id", 0))
        for number in range(1, int(spec["invocations"]) + 1):
            if "message_template" in spec:
                event = _consumer_event(spec["message_template"], order_id + number, spec["queue_arn"])
            else:
                event = spec["event"]
            context.aws_request_id = str(uuid.uuid4())
            _check(handler(event, context))
            if number in spec["marks"]:
                marks[str(number)] = _memory_kb()
        return {"marks": marks}
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    result = main()
    Path(sys.argv[1]).write_text(json.dumps(result), encoding="utf-8")
    sys.stdout.flush()
    # No interpreter teardown: the parent's wall clock should end with the work, as Lambda freezes here.
    os._exit(0)
