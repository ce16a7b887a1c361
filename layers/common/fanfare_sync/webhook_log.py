"""One JSON line per webhook request: the structured log line and the CloudWatch EMF metrics in one.

CloudWatch Logs reads metrics out of any JSON log line with an `_aws` member (Embedded Metric Format: the
directive names the namespace, dimension sets and metric names; dimension and metric values sit at the
root beside any other field). So the webhook functions write a single line per request, which is both what
an operator searches and what the alarms and the dashboard count, instead of a Powertools log line plus a
separate Powertools metrics blob: that took ~150 µs of each request's ~300 µs of CPU, and importing
Powertools' logging and metrics ~60 ms of the cold start.

The line starts with `{"_aws"` (the local runtime and the tests pick EMF lines out that way too) and is
written whatever POWERTOOLS_LOG_LEVEL says, since it is the metric. Lambda's own filter (JSON log format,
ApplicationLogLevel) does read its `level`, as it reads every line's: a level above INFO there drops the
INFO lines and their counts, as it drops Powertools' EMF blobs, which Lambda counts as INFO. The line
carries no body and no header value, so nothing a signature or a secret could be recovered from.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

WEBHOOKS_METRIC = "Webhooks"
# Signed webhooks we could not use: a storefront or platform problem someone must look at. Counted with
# the `service` dimension only, so one alarm covers both platforms.
DATA_PROBLEMS_METRIC = "WebhookDataProblems"
COLD_START_METRIC = "ColdStart"


# Compact, and ASCII-escaped so any odd character a platform sent stays a valid log line.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


class WebhookLog:
    def __init__(
        self,
        *,
        service: str,
        namespace: str,
        platform: str,
        data_problem_outcomes: frozenset[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._platform = platform
        self._data_problem_outcomes = data_problem_outcomes
        self._clock = clock
        self._cold = True
        self._second = -1
        self._second_text = ""

        def directive(dimensions: list[str], metric: str) -> dict[str, Any]:
            return {
                "Namespace": namespace,
                "Dimensions": [dimensions],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }

        webhooks = directive(["service", "platform", "outcome"], WEBHOOKS_METRIC)
        data_problems = directive(["service"], DATA_PROBLEMS_METRIC)
        cold_start = directive(["function_name", "service"], COLD_START_METRIC)
        # The EMF directives as JSON text, one per (data problem?, cold start?): a request only adds values.
        self._directives = {
            (is_problem, is_cold): _encode(
                [webhooks, *([data_problems] if is_problem else []), *([cold_start] if is_cold else [])]
            )
            for is_problem in (False, True)
            for is_cold in (False, True)
        }

    def request(
        self,
        level: str,
        message: str,
        outcome: str,
        fields: Mapping[str, Any],
        event: Mapping[str, Any],
        context: Any,
    ) -> None:
        """Log one answered request and count it under `Webhooks` (and `WebhookDataProblems` if it is one)."""
        millis = int(self._clock() * 1000)
        line: dict[str, Any] = {
            "level": level,
            "message": message,
            # RFC 3339: Lambda's JSON log format reads it (and the level) from the line.
            "timestamp": self._rfc3339(millis),
            "service": self._service,
            "platform": self._platform,
            "outcome": outcome,
            **fields,
            "function_request_id": getattr(context, "aws_request_id", None),
            # API Gateway's request id, as Powertools' correlation_id was: it joins the access log.
            "correlation_id": _request_id(event),
            "cold_start": self._cold,
            WEBHOOKS_METRIC: 1,
        }
        is_problem = outcome in self._data_problem_outcomes
        if is_problem:
            line[DATA_PROBLEMS_METRIC] = 1
        is_cold, self._cold = self._cold, False
        if is_cold:
            line["function_name"] = getattr(context, "function_name", None) or "unknown"
            line[COLD_START_METRIC] = 1
        directives = self._directives[is_problem, is_cold]
        # `_aws` first, then the rest of the line's members. stdout is looked up per call: the Lambda runtime
        # (and tests) may swap it after import.
        sys.stdout.write(
            f'{{"_aws":{{"Timestamp":{millis},"CloudWatchMetrics":{directives}}},{_encode(line)[1:]}\n'
        )

    def _rfc3339(self, millis: int) -> str:
        # Formatted once per second: strftime is slow to run cold, and most lines share their second.
        second = millis // 1000
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{millis % 1000:03d}Z"


def _request_id(event: Mapping[str, Any]) -> Any:
    request_context = event.get("requestContext")
    return request_context.get("requestId") if isinstance(request_context, dict) else None
