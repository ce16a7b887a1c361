"""The `fanfare-sync` command: one group, one module per subcommand under `commands/`."""

from __future__ import annotations

import click

from fanfare_sync_cli.commands.local import local


@click.group()
@click.version_option(package_name="fanfare-sync")
def main() -> None:
    """Operate fanfare-sync: run it locally, send test webhooks, inspect orders, redrive failures."""


main.add_command(local)


if __name__ == "__main__":
    main()
