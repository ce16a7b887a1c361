"""`fanfare-sync secrets set shopify|woocommerce|fanfare`: put a value into the stack's secret, safely.

The value is read from a hidden prompt (typed twice) or from standard input (`--from-stdin`, for a password
manager's CLI), never from the command line, so it is not in shell history or `ps`; it is sent straight to
Secrets Manager and never written to a file or printed. The secret's ARN comes from the stack's outputs
(`--stack NAME`) or from the running local stack (the default), resolved by `fanfare_sync_cli.targets`.

Rotation (`--keep-previous`): the webhook functions accept every string of a JSON array in their secret
(`parse_accepted_secrets`), so the new value is stored first and the current ones stay accepted until the
command is run again without the flag. The functions re-read the secret when a signature does not match,
and the consumer re-reads the Fanfare credentials after a 401/403, so nothing needs a redeploy.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Final

import click

from fanfare_sync.logic.verify_signature import parse_accepted_secrets
from fanfare_sync_cli.targets import TargetSelector, target_options


@dataclass(frozen=True)
class SecretKind:
    logical_id: str  # the template's resource, also the key of the stack output that names its ARN
    what: str
    prompt: str
    webhook: bool


KINDS: Final = {
    "shopify": SecretKind(
        "ShopifyWebhookSecret",
        "Shopify webhook signing secret",
        "Shopify signing secret (app client secret, or the key under Settings > Notifications > Webhooks)",
        webhook=True,
    ),
    "woocommerce": SecretKind(
        "WooCommerceWebhookSecret",
        "WooCommerce webhook secret",
        "WooCommerce webhook secret (the Secret field of each webhook under Settings > Advanced > Webhooks)",
        webhook=True,
    ),
    "fanfare": SecretKind(
        "FanfareCredentialsSecret", "Fanfare credentials", "Fanfare secret key", webhook=False
    ),
}


@click.group()
def secrets() -> None:
    """Set the stack's secrets (webhook signing secrets, Fanfare credentials) without echoing them."""


@secrets.command("set")
@click.argument("which", type=click.Choice(sorted(KINDS)))
@click.option(
    "--from-stdin",
    is_flag=True,
    help="Read the value from standard input instead of a hidden prompt (fanfare: a JSON "
    '{"orgId", "secretKey"} document, or the org id and the key on two lines).',
)
@click.option(
    "--keep-previous",
    is_flag=True,
    help="Webhook secrets only: keep accepting the current value(s) as well, for a rotation without "
    "rejected deliveries; run again without it once the platform signs with the new value.",
)
@target_options
def set_secret(which: str, from_stdin: bool, keep_previous: bool, target: TargetSelector) -> None:
    """Write WHICH secret of the local stack (default) or of a deployed one (--stack NAME).

    WHICH is shopify, woocommerce (the webhook signing secrets) or fanfare (org id and secret key).
    """
    kind = KINDS[which]
    if keep_previous and not kind.webhook:
        raise click.UsageError(
            "--keep-previous is for webhook secrets: Fanfare accepts one secret key at a time, so create "
            "the new key at Fanfare, set it here, then revoke the old one"
        )
    # Read before resolving the target, so a prompt never waits on a half-made AWS call.
    value = _read_fanfare_credentials(from_stdin) if which == "fanfare" else _read_secret(kind, from_stdin)
    resolved = target.resolve()
    secret_id = resolved.resource(kind.logical_id)
    client = resolved.client("secretsmanager")
    accepted = 1
    if keep_previous:
        current = str(client.get_secret_value(SecretId=secret_id).get("SecretString") or "")
        kept = [old for old in parse_accepted_secrets(current) if old != value]
        accepted += len(kept)
        value = json.dumps([value, *kept])
    elif kind.webhook and value.startswith(("[", "{")):
        # Stored as a one-element array so a value that happens to look like JSON is not read as a list.
        value = json.dumps([value])
    version = client.put_secret_value(SecretId=secret_id, SecretString=value).get("VersionId", "?")
    name = secret_id.rsplit(":", 1)[-1]
    click.echo(f"set the {kind.what} of {resolved.description}: {name} (version {version})")
    if kind.webhook:
        previous = f", the new one and {accepted - 1} previous" if accepted > 1 else ""
        click.echo(f"  now accepting {accepted} secret{'s' if accepted > 1 else ''}{previous}")
        click.echo("  the webhook functions re-read it on the first delivery the old value does not verify")


def _read_secret(kind: SecretKind, from_stdin: bool) -> str:
    if from_stdin:
        value = sys.stdin.read().strip()
    else:
        value = str(click.prompt(kind.prompt, hide_input=True, confirmation_prompt=True)).strip()
    if not value:
        # An empty webhook secret would let anyone sign (WooCommerce allows one); never store it.
        raise click.ClickException(f"the {kind.what} is empty; nothing was changed")
    return value


def _read_fanfare_credentials(from_stdin: bool) -> str:
    if from_stdin:
        org_id, secret_key = _parse_credentials(sys.stdin.read())
    else:
        # The org id is not secret (it travels in a header next to the key), so its prompt echoes.
        org_id = str(click.prompt("Fanfare organisation id")).strip()
        secret_key = str(
            click.prompt("Fanfare secret key", hide_input=True, confirmation_prompt=True)
        ).strip()
    if not org_id or not secret_key:
        raise click.ClickException(
            "both the Fanfare organisation id and secret key are needed; nothing was changed"
        )
    return json.dumps({"orgId": org_id, "secretKey": secret_key})


def _parse_credentials(text: str) -> tuple[str, str]:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError:
            # The parser's message would quote the input, which holds the key.
            raise click.ClickException("standard input is not a JSON document; nothing was changed") from None
        if not isinstance(document, dict):
            raise click.ClickException('standard input must be {"orgId": ..., "secretKey": ...}')
        return str(document.get("orgId") or "").strip(), str(document.get("secretKey") or "").strip()
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    if len(lines) != 2:
        raise click.ClickException(
            'standard input must be {"orgId": ..., "secretKey": ...} or the org id and the key on two lines'
        )
    return lines[0], lines[1]
