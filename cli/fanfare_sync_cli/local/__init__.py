"""The local runtime: the whole bundle on one machine, on moto server, with no AWS account and no Docker."""
