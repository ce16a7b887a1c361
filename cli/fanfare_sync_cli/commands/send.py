"""`fanfare-sync send shopify|woocommerce`: a realistic, signed order webhook, posted like the platform.

The equivalent of `shopify app webhook trigger` for both platforms, aimed at the local stack by default or
at a deployed stack's webhook URL (`--stack`). Exit status: 0 when every delivery got an HTTP answer,
whatever its status (a 401 for `--bad-signature` is the point of that option); `--expect CODE` turns any
other answer into exit status 1, for scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import httpx

from fanfare_sync.logic.verify_signature import decode_woocommerce_secret, parse_accepted_secrets
from fanfare_sync_cli.local.stack import DEFAULT_SHOPIFY_WEBHOOK_SECRET, DEFAULT_WC_WEBHOOK_SECRET
from fanfare_sync_cli.samples import SampleOrder
from fanfare_sync_cli.targets import LocalStackNotRunningError, TargetSelector, target_options
from fanfare_sync_cli.webhooks import (
    DEFAULT_SHOPIFY_SHOP,
    DEFAULT_WOOCOMMERCE_SHOP,
    DISTRIBUTION_TYPES,
    SHOPIFY_TOPICS,
    WOOCOMMERCE_STATUSES,
    WOOCOMMERCE_TOPICS,
    Delivery,
    admissions,
    new_order_id,
    order_with,
    shopify_delivery,
    woocommerce_delivery,
    woocommerce_ping_delivery,
)

_LOCAL_DEFAULT_SECRETS = {"shopify": DEFAULT_SHOPIFY_WEBHOOK_SECRET, "woocommerce": DEFAULT_WC_WEBHOOK_SECRET}


@click.group()
def send() -> None:
    """Send a signed test order webhook to the local stack or a deployed one."""


def _order_options(command: Callable[..., None]) -> Callable[..., None]:
    options = (
        click.option("--order-id", type=click.IntRange(min=1), default=None, help="[default: a new id]"),
        click.option("--amount", default="199.00", show_default=True, help="Order total (refund amount)."),
        click.option("--currency", default="USD", show_default=True),
        click.option(
            "--distribution-type",
            default="queue",
            show_default=True,
            help=f"{', '.join(DISTRIBUTION_TYPES)}; any other value exercises the consumer's rejection.",
        ),
        click.option(
            "--distribution-id",
            default=None,
            help="[default: <type>_01JDEMO; admission N>1 gets <id>_N]",
        ),
        click.option("--consumer-id", default=None, help="[default: cons_<order id>]"),
        click.option(
            "--admissions",
            "admission_count",
            type=click.IntRange(min=0, max=150),
            default=1,
            show_default=True,
            help="Fanfare admissions on the order; more than one are carried on line items.",
        ),
        click.option(
            "--line-items/--order-level",
            "on_line_items",
            default=None,
            help="Where the Fanfare data sits [default: order level for one admission, else line items].",
        ),
        click.option(
            "--duplicates",
            type=click.IntRange(min=0, max=100),
            default=0,
            show_default=True,
            help="Send the very same delivery this many extra times (platform retries).",
        ),
        click.option("--bad-signature", is_flag=True, help="Sign with a wrong key: expect 401."),
        click.option(
            "--secret",
            default=None,
            help="Signing secret [default: the target's webhook secret from Secrets Manager; "
            "the documented local secret with --url and no local stack].",
        ),
        click.option("--url", default=None, help="Post here instead of the target's webhook URL."),
        click.option(
            "--expect",
            type=click.IntRange(100, 599),
            default=None,
            help="Exit 1 unless every delivery answers this HTTP status.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=10.0,
            show_default=True,
            help="Seconds to wait for each answer.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


@send.command()
@click.option("--topic", type=click.Choice(SHOPIFY_TOPICS), default="orders/paid", show_default=True)
@click.option("--shop", default=DEFAULT_SHOPIFY_SHOP, show_default=True, help="X-Shopify-Shop-Domain.")
@_order_options
@target_options
def shopify(target: TargetSelector, topic: str, shop: str, **options: Any) -> None:
    """A Shopify order webhook (orders/paid, orders/cancelled, refunds/create), HMAC-signed."""
    secret = _signing_secret("shopify", options["secret"], target, options["url"])
    order = _order(options)
    delivery = shopify_delivery(topic, order, shop, secret, forged=options["bad_signature"])
    _post(_url("shopify", target, options["url"]), delivery, options)


@send.command()
@click.option("--topic", type=click.Choice(WOOCOMMERCE_TOPICS), default="order.updated", show_default=True)
@click.option(
    "--status",
    type=click.Choice(WOOCOMMERCE_STATUSES),
    default="processing",
    show_default=True,
    help="processing/completed are paid; cancelled/refunded are recorded; others are ignored.",
)
@click.option(
    "--shop", default=DEFAULT_WOOCOMMERCE_SHOP, show_default=True, help="Site host (X-WC-Webhook-Source)."
)
@click.option("--ping", is_flag=True, help="Send WooCommerce's unsigned creation ping instead of an order.")
@_order_options
@target_options
def woocommerce(
    target: TargetSelector, topic: str, status: str, shop: str, ping: bool, **options: Any
) -> None:
    """A WooCommerce order webhook (order.created / order.updated with a status), signed, or the ping."""
    url = _url("woocommerce", target, options["url"])
    if ping:
        _post(url, woocommerce_ping_delivery(webhook_id=7), options)
        return
    # WooCommerce signs with wp_specialchars_decode(secret): sign with what the shop would sign with.
    secret = decode_woocommerce_secret(
        _signing_secret("woocommerce", options["secret"], target, options["url"])
    )
    order = _order(options)
    delivery = woocommerce_delivery(topic, status, order, shop, secret, forged=options["bad_signature"])
    _post(url, delivery, options)


def _order(options: dict[str, Any]) -> SampleOrder:
    order_id = options["order_id"] or new_order_id()
    distribution_type = options["distribution_type"]
    count = options["admission_count"]
    on_line_items = options["on_line_items"]
    if on_line_items is None:
        on_line_items = count > 1
    if count > 1 and not on_line_items:
        raise click.UsageError("an order carries one admission at order level; use --line-items for more")
    return order_with(
        order_id,
        options["amount"],
        options["currency"],
        admissions(
            count,
            distribution_type,
            options["distribution_id"] or f"{distribution_type}_01JDEMO",
            options["consumer_id"] or f"cons_{order_id}",
        ),
        on_line_items=on_line_items,
    )


def _signing_secret(platform: str, explicit: str | None, target: TargetSelector, url: str | None) -> str:
    if explicit is not None:
        return explicit
    if target.local and url is not None:
        # Posting somewhere else with no local stack running: the documented local secret.
        try:
            target.resolve()
        except LocalStackNotRunningError:
            return _LOCAL_DEFAULT_SECRETS[platform]
    resolved = target.resolve()
    secrets = parse_accepted_secrets(resolved.webhook_secrets(platform))
    if not secrets:
        raise click.ClickException(f"the {platform} webhook secret of {resolved.description} is empty")
    # During a rotation every listed secret verifies; the first is as good as any.
    return secrets[0]


def _url(platform: str, target: TargetSelector, explicit: str | None) -> str:
    return explicit or target.resolve().webhook_url(platform)


def _post(url: str, delivery: Delivery, options: dict[str, Any]) -> None:
    copies = 1 + int(options["duplicates"])
    click.echo(f"POST {url}")
    for line in delivery.summary.splitlines():
        click.echo(f"  {line}")
    if delivery.delivery_id:
        click.echo(f"  delivery {delivery.delivery_id}" + (f", sent {copies} times" if copies > 1 else ""))
    if options.get("bad_signature"):
        click.echo("  signed with a wrong key (--bad-signature)")
    statuses: list[int] = []
    with httpx.Client(timeout=options["timeout"]) as client:
        for number in range(1, copies + 1):
            try:
                response = client.post(url, headers=delivery.headers, content=delivery.body)
            except httpx.HTTPError as error:
                raise click.ClickException(f"cannot reach {url}: {type(error).__name__}: {error}") from None
            statuses.append(response.status_code)
            body = " ".join(response.text.split())
            click.echo(f"  {number}/{copies}  {response.status_code} {response.reason_phrase}  {body[:300]}")
    expected = options["expect"]
    if expected is not None and any(status != expected for status in statuses):
        raise click.ClickException(f"expected HTTP {expected} for every delivery, got {statuses}")
