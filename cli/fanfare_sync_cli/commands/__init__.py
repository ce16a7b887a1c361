"""One module per `fanfare-sync` subcommand (group)."""
