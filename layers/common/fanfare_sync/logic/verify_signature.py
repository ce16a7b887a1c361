"""Webhook signature verification shared by Shopify and WooCommerce.

Both platforms send base64(HMAC-SHA256(raw body, secret)); only the header and the key differ. The check
runs over the exact bytes received, before anything parses them, and compares in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable


def compute_signature(secret: str, raw_body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(raw_body: bytes, signature_header: str | None, accepted_secrets: Iterable[str]) -> bool:
    """True when the header is the signature of `raw_body` under any accepted secret (rotation)."""
    if not signature_header:
        return False
    presented = signature_header.strip().encode("utf-8", "surrogateescape")
    matched = False
    for secret in accepted_secrets:
        if not secret:
            # An empty secret would let anyone sign (WooCommerce allows it); never accept one.
            continue
        expected = compute_signature(secret, raw_body).encode("ascii")
        # No early return: every configured secret costs the same, whichever one matched.
        matched |= hmac.compare_digest(expected, presented)
    return matched


def parse_accepted_secrets(secret_value: str) -> tuple[str, ...]:
    """Read the secret as stored in Secrets Manager (or given locally).

    Accepted forms, so an operator can rotate without downtime:
    - a plain string: one secret;
    - a JSON array of strings: every one of them is accepted;
    - a JSON object {"secrets": [...]}: the same, with room for notes beside it.
    """
    text = secret_value.strip()
    if text.startswith(("[", "{")):
        try:
            parsed = json.loads(text)
        except ValueError:
            return (text,)
        candidates = parsed.get("secrets", []) if isinstance(parsed, dict) else parsed
        if isinstance(candidates, list):
            return tuple(s for s in candidates if isinstance(s, str) and s)
        return ()
    return (text,) if text else ()


_WP_SPECIALCHARS = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#039;", "'"), ("&#39;", "'"))


def decode_woocommerce_secret(secret: str) -> str:
    """Apply WordPress's wp_specialchars_decode(..., ENT_QUOTES), which WooCommerce runs on the key.

    WordPress may store a secret typed as `a&b` as `a&amp;b`; WooCommerce decodes it back before signing, so
    decoding what the operator configured here yields the same key either way.
    """
    decoded = secret
    for entity, char in _WP_SPECIALCHARS:
        decoded = decoded.replace(entity, char)
    # &amp; last, so `&amp;lt;` decodes to `&lt;` once, as PHP does.
    return decoded.replace("&amp;", "&")
