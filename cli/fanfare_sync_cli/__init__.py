"""Operator tooling for fanfare-sync: the local runtime, the Fanfare sandbox and the `fanfare-sync` CLI.

Never part of the runtime layer. Only the sandbox package is deployed, as its own function, and only
when a staging stack asks for it (DeployFanfareSandbox=true).
"""
