"""The `fanfare-sync` command: one group, one module per subcommand under `commands/`."""

from __future__ import annotations

import click

from fanfare_sync_cli.commands.dlq import dlq
from fanfare_sync_cli.commands.local import local
from fanfare_sync_cli.commands.orders import orders
from fanfare_sync_cli.commands.secrets import secrets
from fanfare_sync_cli.commands.send import send


@click.group()
@click.version_option(package_name="fanfare-sync")
def main() -> None:
    """Operate fanfare-sync: run it locally, send test webhooks, inspect orders, redrive failures."""


main.add_command(local)
main.add_command(send)
main.add_command(orders)
main.add_command(dlq)
main.add_command(secrets)


if __name__ == "__main__":
    main()
