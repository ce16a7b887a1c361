"""Operator tooling for fanfare-sync: the local runtime and the `fanfare-sync` CLI.

Never shipped to Lambda.
"""
