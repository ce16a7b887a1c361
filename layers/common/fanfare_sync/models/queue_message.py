"""The versioned message the webhook functions put on the completion queue (the DESIGN contract)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MESSAGE_VERSION: Literal[1] = 1


class Platform(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"


class OrderEventKind(StrEnum):
    PAID = "order.paid"
    CANCELLED = "order.cancelled"
    REFUNDED = "order.refunded"


class Admission(BaseModel):
    """One Fanfare admission carried by an order; an order may carry several (one per line item)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    distributionId: str = Field(min_length=1, max_length=200)
    # Kept as the normalised text the shop sent: the consumer rejects unknown types with a recorded reason,
    # which is more useful to an operator than a webhook silently dropped at the edge.
    distributionType: str = Field(min_length=1, max_length=50)
    consumerId: str = Field(min_length=1, max_length=200)


class OrderMessage(BaseModel):
    """One order event. Money is a decimal string, never a float."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = MESSAGE_VERSION
    kind: OrderEventKind
    platform: Platform
    shop: str = Field(min_length=1)
    orderId: str = Field(min_length=1)
    topic: str
    # The platform's id for this delivery (Shopify X-Shopify-Webhook-Id,
    # WooCommerce X-WC-Webhook-Delivery-ID).
    deliveryId: str | None = None
    # The identity of the event behind the delivery (Shopify X-Shopify-Event-Id; for WooCommerce, whose
    # delivery id is only unique per second, webhook id + order id + status + modification time).
    eventId: str | None = None
    triggeredAt: str | None = None
    receivedAt: str
    admissions: tuple[Admission, ...] = ()
    amount: str | None = None
    currency: str | None = None
    itemCount: int = 0
