"""`fanfare-sync orders show|list|stale`: what the orders table says about an order and its history.

Finding an order by id alone. The table's key is `ORDER#{platform}#{shop}#{orderId}`, so a Query needs the
shop. With `--shop` the command queries both platforms (two cheap reads). Without it, the local stack is
scanned (a few items); a deployed table is not, unless the operator asks with `--scan`, because a scan
reads, and bills, every item of a table that holds every order and its history.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from fanfare_sync.adapters.orders_table import ORDER_SK, OrdersTable
from fanfare_sync.logic.detect_stale_orders import find_stale_orders, iso
from fanfare_sync.models.orders import OrderKey, SyncStatus
from fanfare_sync.models.queue_message import Platform
from fanfare_sync_cli.formatting import Duration, human_age, shorten, table, to_json
from fanfare_sync_cli.targets import Target, TargetSelector, target_options

PLATFORMS = tuple(p.value for p in Platform)
# Every ISO-8601 timestamp sorts before this: "unsynced since before the end of time" is all of them.
_END_OF_TIME = "9999"
_deserializer = TypeDeserializer()
_serializer = TypeSerializer()


@click.group()
def orders() -> None:
    """Inspect orders: one order's record and history, orders by sync status, stale orders."""


def _table(target: Target) -> OrdersTable:
    return OrdersTable(target.resource("OrdersTable"), target.client("dynamodb"))


# ------------------------------------------------------------------------------------------------ show
@orders.command()
@click.argument("order_id")
@click.option("--platform", type=click.Choice(PLATFORMS), default=None, help="[default: either]")
@click.option(
    "--shop",
    default=None,
    help="Shop domain / site host. Required with --stack unless --scan [default: found by a local scan].",
)
@click.option(
    "--scan",
    is_flag=True,
    help="With --stack and no --shop: find the order by scanning the whole table (reads every item).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the order item and its events as JSON.")
@target_options
def show(
    target: TargetSelector, order_id: str, platform: str | None, shop: str | None, scan: bool, as_json: bool
) -> None:
    """The order item (sync state, admissions) and its history, oldest event first.

    The table is keyed by platform, shop and order id: with --shop this is two small reads. Without it the
    local table is scanned for the id; a deployed one only with --scan, as that reads every item.
    """
    resolved = target.resolve()
    table_ = _table(resolved)
    key = _find_order(resolved, table_, order_id, platform, shop, scan)
    order, events = table_.order_with_history(key)
    if as_json:
        click.echo(to_json({"order": order, "events": events}))
        return
    for line in render_order(key, order, events):
        click.echo(line)


def _find_order(
    target: Target, table_: OrdersTable, order_id: str, platform: str | None, shop: str | None, scan: bool
) -> OrderKey:
    platforms = [platform] if platform else list(PLATFORMS)
    if shop is not None:
        found = [
            key
            for key in (OrderKey(p, shop, order_id) for p in platforms)
            if table_.order_with_history(key) != (None, [])
        ]
        where = f" for shop {shop}"
    elif target.local or scan:
        found = [k for k in _scan_orders(target, order_id) if k.platform in platforms]
        where = ""
    else:
        raise click.ClickException(
            f"--shop is required with --stack: the table is keyed by platform, shop and order id "
            f"(pass --scan to read the whole table of {target.description} instead)"
        )
    if not found:
        raise click.ClickException(f"order {order_id} not found{where} in {target.description}")
    if len(found) > 1:
        names = ", ".join(f"{k.platform} {k.shop}" for k in found)
        raise click.ClickException(
            f"order {order_id} exists more than once ({names}): pass --platform/--shop"
        )
    return found[0]


def _scan_orders(target: Target, order_id: str) -> list[OrderKey]:
    items = _scan(
        target,
        "sk = :order AND orderId = :id",
        {":order": ORDER_SK, ":id": order_id},
    )
    return [OrderKey(str(i["platform"]), str(i["shop"]), str(i["orderId"])) for i in items]


def _scan(target: Target, condition: str, values: dict[str, Any], limit: int | None = None) -> Iterator[Any]:
    """Order items matching `condition`, page by page, until `limit` of them (Scan filters after reading)."""
    request: dict[str, Any] = {
        "TableName": target.resource("OrdersTable"),
        "FilterExpression": condition,
        "ExpressionAttributeValues": {k: _serializer.serialize(v) for k, v in values.items()},
    }
    dynamodb = target.client("dynamodb")
    found = 0
    while True:
        page = dynamodb.scan(**request)
        for raw in page.get("Items", []):
            yield {name: _deserializer.deserialize(value) for name, value in raw.items()}
            found += 1
            if limit is not None and found >= limit:
                return
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def render_order(key: OrderKey, order: dict[str, Any] | None, events: list[dict[str, Any]]) -> list[str]:
    lines = [f"order {key.order_id}  {key.platform}  {key.shop}"]
    if order is None:
        lines.append("  (no order item: only history events were recorded)")
    else:
        lines += [f"  {name:<14}{value}" for name, value in _order_fields(order) if value]
        admissions = order.get("admissions") or []
        lines.append(f"admissions ({len(admissions)})")
        lines += (
            []
            if not admissions
            else [
                f"  {line}"
                for line in table(
                    ("TYPE", "DISTRIBUTION", "CONSUMER", "STATE", "COMPLETED AT", "FANFARE ANSWERED"),
                    [
                        (
                            a.get("distributionType"),
                            a.get("distributionId"),
                            a.get("consumerId"),
                            a.get("state", "pending"),
                            a.get("completedAt", ""),
                            describe_completion(a.get("completion")),
                        )
                        for a in admissions
                    ],
                )
            ]
        )
    lines.append(f"history ({len(events)} event{'s' if len(events) != 1 else ''})")
    width = max((len(str(e.get("event", ""))) for e in events), default=0)
    lines += [f"  {e.get('at', '')}  {e.get('event', ''):<{width}}  {describe_event(e)}" for e in events]
    return lines


def _order_fields(order: dict[str, Any]) -> list[tuple[str, str]]:
    attempts = int(order.get("attempts", 0))
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    sync = str(order.get("syncStatus", ""))
    if sync == SyncStatus.SYNCED:
        sync_line = f"synced at {order.get('syncedAt', '?')} after {tries}"
    elif sync == SyncStatus.FAILED:
        sync_line = f"failed at {order.get('failedAt', '?')} after {tries}"
    elif sync == SyncStatus.PENDING:
        sync_line = f"pending since {order.get('unsyncedSince', '?')}, {tries}"
    else:
        sync_line = "never paid (no completion due)"
    items = int(order.get("itemCount", 0))
    amount = f"{order.get('amount', '')} {order.get('currency', '')}".strip()
    return [
        ("status", str(order.get("status", ""))),
        ("sync", sync_line),
        ("amount", f"{amount}, {items} item{'s' if items != 1 else ''}" if amount else ""),
        ("received", str(order.get("receivedAt", ""))),
        ("created", str(order.get("createdAt", ""))),
        ("paid", str(order.get("paidAt", ""))),
        ("cancelled", str(order.get("cancelledAt", ""))),
        ("refunded", str(order.get("refundedAt", ""))),
        ("last error", str(order.get("lastError", ""))),
        (
            "requeued",
            f"{order.get('requeues')} time(s), last {order.get('lastRequeuedAt')}"
            if order.get("requeues")
            else "",
        ),
        ("last delivery", str(order.get("lastDeliveryId", ""))),
    ]


def describe_completion(completion: dict[str, Any] | None) -> str:
    """Fanfare's answer to the call that completed an admission, as the order item keeps it."""
    if not completion:
        return ""
    text = (
        f"HTTP {completion.get('statusCode')} in {completion.get('latencyMs')} ms "
        f"(attempt {completion.get('attempt')})"
    )
    return text + (", already completed" if completion.get("alreadyCompleted") else "")


def describe_event(event: dict[str, Any]) -> str:
    """One line per history event: the facts an operator reads, in words."""
    data: dict[str, Any] = event.get("data") or {}
    name = event.get("event")
    if name == "order_received":  # written by versions before the receipt moved into the order item
        count = int(data.get("admissions", 0))
        return _joined(
            f"{data.get('kind')} via {data.get('topic')}",
            f"{count} admission{'s' if count != 1 else ''}",
            _money(data),
            f"delivery {data['deliveryId']}" if data.get("deliveryId") else "",
        )
    # Written by versions before completions moved into the order item (still shown for old orders).
    if name == "fanfare_admission_completed":
        admission = f"{data.get('distributionType')} {data.get('distributionId')} / {data.get('consumerId')}"
        synced = ", order synced" if data.get("orderSynced") else ""
        return f"{admission}: {describe_completion(data)}{synced}"
    if name == "fanfare_retry_scheduled":
        return (
            f"attempt {data.get('attempt')}: {data.get('reason')}; next try in {data.get('retryInSeconds')} s"
        )
    if name == "fanfare_sync_failed":
        return f"attempt {data.get('attempt')}: {data.get('reason')}"
    if name == "fanfare_sync_resumed":
        return _joined(
            f"redelivered via {data.get('topic')}",
            f"previously: {data['previousError']}" if data.get("previousError") else "",
        )
    if name == "order_requeued":
        return f"requeued by the stale-order monitor: {data.get('reason')}"
    if name in ("order_cancelled", "order_refunded"):
        return _joined(
            f"via {data.get('topic')}",
            _money(data),
            f"delivery {data['deliveryId']}" if data.get("deliveryId") else "",
        )
    return ", ".join(f"{k}={v}" for k, v in sorted(data.items()))


def _money(data: dict[str, Any]) -> str:
    return f"{data.get('amount') or ''} {data.get('currency') or ''}".strip()


def _joined(*parts: str) -> str:
    # Events recorded from sparse messages (a requeue, a refund) lack some fields: leave them out.
    return ", ".join(part for part in parts if part)


# ------------------------------------------------------------------------------------------------ list
@orders.command("list")
@click.option(
    "--status",
    type=click.Choice(["unsynced", "pending", "failed", "synced"]),
    default="unsynced",
    show_default=True,
    help="unsynced/pending/failed read the sparse UnsyncedOrders index (only unsynced orders: cheap); "
    "synced has no index and scans the whole table (reads every item), stopping at --limit.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the order items as JSON.")
@target_options
def list_orders(target: TargetSelector, status: str, limit: int, as_json: bool) -> None:
    """Orders by sync status: unsynced ones oldest first, synced ones as the scan finds them."""
    resolved = target.resolve()
    if status == "synced":
        items = list(
            _scan(
                resolved,
                "sk = :order AND syncStatus = :synced",
                {":order": ORDER_SK, ":synced": "synced"},
                limit,
            )
        )
        items.sort(key=lambda i: str(i.get("syncedAt", "")), reverse=True)
    else:
        wanted = {"pending", "failed"} if status == "unsynced" else {status}
        unsynced = [
            i for i in _table(resolved).unsynced_since_before(_END_OF_TIME) if i.get("syncStatus") in wanted
        ]
        items = sorted(unsynced, key=lambda i: str(i.get("unsyncedSince", "")))[:limit]
    if as_json:
        click.echo(to_json(items))
        return
    if not items:
        click.echo(f"no {status} orders in {resolved.description}")
        return
    since = "SYNCED AT" if status == "synced" else "UNSYNCED SINCE"
    rows = [
        (
            i.get("orderId"),
            i.get("platform"),
            i.get("shop"),
            i.get("syncStatus"),
            i.get("syncedAt") if status == "synced" else i.get("unsyncedSince"),
            i.get("attempts", 0),
            shorten(i.get("lastError", ""), 60),
        )
        for i in items
    ]
    for line in table(("ORDER", "PLATFORM", "SHOP", "SYNC", since, "ATTEMPTS", "LAST ERROR"), rows):
        click.echo(line)


# ----------------------------------------------------------------------------------------------- stale
@orders.command()
@click.option(
    "--older-than",
    type=Duration(),
    default="30m",
    show_default=True,
    help="Unsynced for longer than this (90s, 30m, 2h, 1d); the monitor's StaleAfterMinutes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stale order items as JSON.")
@target_options
def stale(target: TargetSelector, older_than: float, as_json: bool) -> None:
    """Orders unsynced (pending or failed) for longer than --older-than, oldest first."""
    resolved = target.resolve()
    now = datetime.now(UTC)
    found = sorted(
        find_stale_orders(_table(resolved), now, older_than), key=lambda o: o.age_seconds, reverse=True
    )
    if as_json:
        click.echo(to_json([{**o.item, "ageSeconds": o.age_seconds} for o in found]))
        return
    threshold = human_age(older_than)
    if not found:
        click.echo(f"no order unsynced for longer than {threshold} in {resolved.description} (at {iso(now)})")
        return
    click.echo(f"{len(found)} order{'s' if len(found) != 1 else ''} unsynced for longer than {threshold}:")
    rows = [
        (
            o.key.order_id,
            o.key.platform,
            o.key.shop,
            o.sync_status,
            human_age(o.age_seconds),
            o.attempts,
            shorten(o.last_error or "", 60),
        )
        for o in found
    ]
    for line in table(("ORDER", "PLATFORM", "SHOP", "SYNC", "AGE", "ATTEMPTS", "LAST ERROR"), rows):
        click.echo(line)
