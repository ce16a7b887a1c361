"""POST /webhooks/woocommerce: verify the WooCommerce HMAC (or answer the unsigned creation ping), queue."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from fanfare_sync.logic.ingest_webhook import WOOCOMMERCE
from fanfare_sync.webhook_endpoint import WebhookEndpoint

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
endpoint = WebhookEndpoint.from_environment(WOOCOMMERCE, logger, metrics)
endpoint.register_error_handler(app)


@app.post("/webhooks/woocommerce")
def receive_woocommerce_webhook() -> Response[Any]:
    return endpoint.respond(app.current_event)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
