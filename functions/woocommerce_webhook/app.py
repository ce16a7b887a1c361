"""POST /webhooks/woocommerce: verify the WooCommerce HMAC (or answer the unsigned creation ping), queue."""

from typing import Any

from fanfare_sync.logic.ingest_webhook import WOOCOMMERCE
from fanfare_sync.webhook_endpoint import WebhookEndpoint

endpoint = WebhookEndpoint.from_environment(WOOCOMMERCE, route="/webhooks/woocommerce")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return endpoint.handle(event, context)
