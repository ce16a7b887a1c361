"""Assertions on template.yaml for what cfn-lint and `sam validate --lint` cannot know."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fanfare_sync_cli.local.template import PROJECT_ROOT, function_specs


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of(template, "AWS::Serverless::Function")


def test_every_function_is_python313_on_arm64(template: dict[str, Any]) -> None:
    defaults = template["Globals"]["Function"]
    assert defaults["Runtime"] == "python3.13"
    assert defaults["Architectures"] == ["arm64"]
    for name, function in functions(template).items():
        props = function["Properties"]
        assert props.get("Runtime", "python3.13") == "python3.13", name
        assert props.get("Architectures", ["arm64"]) == ["arm64"], name
        assert function["Metadata"]["BuildMethod"] == "makefile", name
        assert (PROJECT_ROOT / props["CodeUri"] / "Makefile").read_text().startswith("#"), name


def test_layer_is_built_for_arm64_python313(template: dict[str, Any]) -> None:
    layer = template["Resources"]["CommonLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "CommonLayer"}]


def test_powertools_is_configured_for_every_function(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "fanfare-sync"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "FanfareSync"
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_lambda_log_levels_follow_the_parameters(template: dict[str, Any]) -> None:
    logging = template["Globals"]["Function"]["LoggingConfig"]
    # Levels are only configurable with the JSON format; the handlers' own lines are JSON already.
    assert logging["LogFormat"] == "JSON"
    assert logging["SystemLogLevel"] == {"Ref": "LambdaSystemLogLevel"}
    assert template["Parameters"]["LambdaSystemLogLevel"]["Default"] == "WARN"
    # Lambda filters application lines by level too: it must let through what Powertools is asked to log.
    assert logging["ApplicationLogLevel"] == {
        "Fn::FindInMap": ["ApplicationLogLevels", {"Ref": "LogLevel"}, "Lambda"]
    }
    levels = template["Mappings"]["ApplicationLogLevels"]
    assert set(levels) == set(template["Parameters"]["LogLevel"]["AllowedValues"])
    # Lambda files lines without a level (the EMF metric lines) as INFO: any stricter application level
    # would drop every metric, so the parameter offers none.
    assert {python: row["Lambda"] for python, row in levels.items()} == {"DEBUG": "DEBUG", "INFO": "INFO"}


def test_completion_queue_redrives_to_the_dlq_after_six_attempts(template: dict[str, Any]) -> None:
    queue = template["Resources"]["CompletionQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["CompletionDLQ", "Arn"]},
        "maxReceiveCount": 6,
    }
    dlq = template["Resources"]["CompletionDLQ"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_queue_is_encrypted_at_rest(template: dict[str, Any]) -> None:
    queues = resources_of(template, "AWS::SQS::Queue")
    assert set(queues) >= {"CompletionQueue", "CompletionDLQ"}
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name


def test_queue_visibility_covers_six_consumer_timeouts(template: dict[str, Any]) -> None:
    # The consumer arrives with the completion issue; until then the queue is sized for its planned 30 s.
    consumers = [spec for spec in function_specs(template) if spec.sqs_triggers]
    timeout = max((spec.timeout_seconds for spec in consumers), default=30)
    assert template["Resources"]["CompletionQueue"]["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_http_api_has_throttling_and_access_logs(template: dict[str, Any]) -> None:
    api = template["Resources"]["WebhookApi"]["Properties"]
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    for field in ("$context.requestId", "$context.status", "$context.integrationLatency"):
        assert field in api["AccessLogSettings"]["Format"]


@pytest.mark.parametrize(
    ("function", "path", "secret", "secret_env"),
    [
        ("ShopifyWebhookFunction", "/webhooks/shopify", "ShopifyWebhookSecret", "SHOPIFY_WEBHOOK_SECRET_ARN"),
        (
            "WooCommerceWebhookFunction",
            "/webhooks/woocommerce",
            "WooCommerceWebhookSecret",
            "WC_WEBHOOK_SECRET_ARN",
        ),
    ],
)
def test_webhook_function_reaches_only_its_queue_and_its_secret(
    template: dict[str, Any], function: str, path: str, secret: str, secret_env: str
) -> None:
    props = functions(template)[function]["Properties"]
    assert props["Events"]["Webhook"] == {
        "Type": "HttpApi",
        "Properties": {"ApiId": {"Ref": "WebhookApi"}, "Path": path, "Method": "POST"},
    }
    assert props["Policies"] == [
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["CompletionQueue", "QueueName"]}}},
        {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": secret}}},
    ]
    assert props["Environment"]["Variables"] == {
        "COMPLETION_QUEUE_URL": {"Ref": "CompletionQueue"},
        secret_env: {"Ref": secret},
    }
    # Shopify allows 5 s for the whole delivery.
    assert props["Timeout"] <= 5


def test_outputs_give_both_webhook_urls(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ShopifyWebhookUrl"]["Value"] == {
        "Fn::Sub": "https://${WebhookApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/webhooks/shopify"
    }
    assert outputs["WooCommerceWebhookUrl"]["Value"] == {
        "Fn::Sub": "https://${WebhookApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/webhooks/woocommerce"
    }
    for name in (
        "CompletionQueueUrl",
        "CompletionDLQUrl",
        "ShopifyWebhookSecretArn",
        "FanfareCredentialsSecretArn",
    ):
        assert name in outputs


def test_secrets_are_never_inlined_in_the_template(template: dict[str, Any]) -> None:
    for name, secret in resources_of(template, "AWS::SecretsManager::Secret").items():
        assert "SecretString" not in secret["Properties"], name
        assert "GenerateSecretString" in secret["Properties"], name


def test_every_log_group_has_a_retention(template: dict[str, Any]) -> None:
    for name, group in resources_of(template, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    for name, function in functions(template).items():
        assert "LoggingConfig" in function["Properties"], name


def test_consumer_reports_partial_batch_failures_with_bounded_concurrency(template: dict[str, Any]) -> None:
    props = functions(template)["CompleteAdmissionFunction"]["Properties"]
    event = props["Events"]["Completion"]
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["CompletionQueue", "Arn"]}
    assert event["Properties"]["BatchSize"] == 10
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "CompletionMaxConcurrency"}}
    assert template["Parameters"]["CompletionMaxConcurrency"]["MinValue"] == 2  # the SQS minimum


def test_consumer_policies_reach_only_what_it_uses(template: dict[str, Any]) -> None:
    [policy] = functions(template)["CompleteAdmissionFunction"]["Properties"]["Policies"]
    grants = {(s["Sid"], tuple(s["Action"]), str(s["Resource"])) for s in policy["Statement"]}
    assert grants == {
        (
            "OrdersReadWrite",
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
            str({"Fn::GetAtt": ["OrdersTable", "Arn"]}),
        ),
        (
            "IdempotencyRecords",
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
            str({"Fn::GetAtt": ["IdempotencyTable", "Arn"]}),
        ),
        ("RetryBackoff", ("sqs:ChangeMessageVisibility",), str({"Fn::GetAtt": ["CompletionQueue", "Arn"]})),
        ("PermanentFailuresToDlq", ("sqs:SendMessage",), str({"Fn::GetAtt": ["CompletionDLQ", "Arn"]})),
        ("FanfareCredentials", ("secretsmanager:GetSecretValue",), str({"Ref": "FanfareCredentialsSecret"})),
    }
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])


def test_idempotency_table_expires_records_with_powertools_attribute(template: dict[str, Any]) -> None:
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_orders_table_has_the_sparse_sharded_unsynced_index(template: dict[str, Any]) -> None:
    table = template["Resources"]["OrdersTable"]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "UnsyncedOrders"
    assert index["KeySchema"] == [
        {"AttributeName": "unsyncedShard", "KeyType": "HASH"},
        {"AttributeName": "unsyncedSince", "KeyType": "RANGE"},
    ]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_every_table_is_encrypted_and_on_demand(template: dict[str, Any]) -> None:
    for name, table in resources_of(template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST", name


def test_consumer_talks_to_the_configured_fanfare(template: dict[str, Any]) -> None:
    variables = functions(template)["CompleteAdmissionFunction"]["Properties"]["Environment"]["Variables"]
    # The staging sandbox, when deployed, stands in for Fanfare; otherwise the configured API.
    assert variables["FANFARE_API_URL"] == {
        "Fn::If": [
            "WithFanfareSandbox",
            {"Fn::GetAtt": ["FanfareSandboxFunctionUrl", "FunctionUrl"]},
            {"Ref": "FanfareApiUrl"},
        ]
    }
    assert variables["FANFARE_AUTH_STYLE"] == {"Ref": "FanfareAuthStyle"}
    assert template["Parameters"]["FanfareAuthStyle"]["AllowedValues"] == ["headers", "bearer"]


def test_stale_monitor_runs_on_its_schedule_with_least_privilege(template: dict[str, Any]) -> None:
    props = functions(template)["StaleOrdersFunction"]["Properties"]
    schedule = props["Events"]["Every"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == {
        "Fn::Sub": "rate(${StaleCheckIntervalMinutes} minutes)"
    }
    assert template["Parameters"]["StaleCheckIntervalMinutes"]["Default"] == 5
    assert template["Parameters"]["StaleAfterMinutes"]["Default"] == 30
    [policy] = props["Policies"]
    grants = {(s["Sid"], tuple(s["Action"]), str(s["Resource"])) for s in policy["Statement"]}
    assert grants == {
        (
            "ReadUnsyncedOrders",
            ("dynamodb:Query",),
            str({"Fn::Sub": "${OrdersTable.Arn}/index/UnsyncedOrders"}),
        ),
        (
            "RecordRequeues",
            ("dynamodb:UpdateItem", "dynamodb:PutItem"),
            str({"Fn::GetAtt": ["OrdersTable", "Arn"]}),
        ),
        ("RequeueLostMessages", ("sqs:SendMessage",), str({"Fn::GetAtt": ["CompletionQueue", "Arn"]})),
    }


def test_monitor_knows_the_dlq_retention(template: dict[str, Any]) -> None:
    variables = functions(template)["StaleOrdersFunction"]["Properties"]["Environment"]["Variables"]
    dlq = template["Resources"]["CompletionDLQ"]["Properties"]
    assert int(variables["DLQ_RETENTION_SECONDS"]) == dlq["MessageRetentionPeriod"]


def test_alerts_topic_is_encrypted_and_email_is_optional(template: dict[str, Any]) -> None:
    assert template["Resources"]["AlertsTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"
    subscription = template["Resources"]["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail"
    assert template["Parameters"]["AlertEmail"]["Default"] == ""


def test_silent_monitor_alarm_covers_the_longest_allowed_interval(template: dict[str, Any]) -> None:
    silent = template["Resources"]["StaleMonitorSilentAlarm"]["Properties"]
    longest = template["Parameters"]["StaleCheckIntervalMinutes"]["MaxValue"] * 60
    assert silent["Period"] * silent["EvaluationPeriods"] > longest
    assert silent["TreatMissingData"] == "breaching"


def test_dashboard_shows_what_operators_watch(template: dict[str, Any]) -> None:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for shown in (
        "Webhooks",
        "Completions",
        "AlreadyCompleted",
        "CompletionRetries",
        "ApproximateNumberOfMessagesVisible",
        "StaleOrders",
        "FanfareLatency",
        "p99",
        "Latency",
    ):
        assert shown in body, shown
    resources = set(template["Resources"])
    referenced = {
        name.split(".")[0] for name in re.findall(r"\$\{([A-Za-z0-9.]+)\}", body) if "::" not in name
    }
    assert referenced <= resources | {"AWS"}, referenced - resources
    assert "DashboardUrl" in template["Outputs"]
    assert "AlertsTopicArn" in template["Outputs"]
