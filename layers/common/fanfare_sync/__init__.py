"""fanfare-sync runtime library, shipped in the common Lambda layer.

Layering (handler -> logic -> adapters): `functions/*/app.py` translate Lambda events, `logic` holds the
decisions and never imports boto3 or httpx, `adapters` hold the I/O behind small interfaces.
"""
