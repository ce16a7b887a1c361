"""POST /webhooks/shopify: verify the Shopify HMAC on the raw body, queue the order event, answer fast."""

from typing import Any

from fanfare_sync.logic.ingest_webhook import SHOPIFY
from fanfare_sync.webhook_endpoint import WebhookEndpoint

endpoint = WebhookEndpoint.from_environment(SHOPIFY, route="/webhooks/shopify")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return endpoint.handle(event, context)
