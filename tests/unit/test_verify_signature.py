from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from fanfare_sync.logic.verify_signature import (
    compute_signature,
    decode_woocommerce_secret,
    parse_accepted_secrets,
    signature_matches,
)

BODY = b'{"id":1,"total_price":"10.00","note":"caf\xc3\xa9 \\u0026 more"}'
SECRET = "shpss_0123456789abcdef"


def test_known_vector_matches_rfc_style_example() -> None:
    # HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), base64 of the well-known hex digest.
    expected = base64.b64encode(
        bytes.fromhex("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    ).decode()
    assert compute_signature("key", b"The quick brown fox jumps over the lazy dog") == expected


def test_good_signature_is_accepted() -> None:
    assert signature_matches(BODY, compute_signature(SECRET, BODY), [SECRET])


def test_every_tampered_byte_is_rejected() -> None:
    signature = compute_signature(SECRET, BODY)
    for index in range(len(BODY)):
        tampered = BODY[:index] + bytes([BODY[index] ^ 0x01]) + BODY[index + 1 :]
        assert not signature_matches(tampered, signature, [SECRET]), index


def test_wrong_secret_is_rejected() -> None:
    assert not signature_matches(BODY, compute_signature("other-secret", BODY), [SECRET])


def test_rotation_accepts_old_and_new_secret() -> None:
    old, new = "old-secret", "new-secret"
    assert signature_matches(BODY, compute_signature(old, BODY), [new, old])
    assert signature_matches(BODY, compute_signature(new, BODY), [new, old])
    assert not signature_matches(BODY, compute_signature("retired", BODY), [new, old])


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_signature_is_rejected(header: str | None) -> None:
    assert not signature_matches(BODY, header, [SECRET])


def test_empty_body_is_verified_like_any_other() -> None:
    assert signature_matches(b"", compute_signature(SECRET, b""), [SECRET])
    assert not signature_matches(b"", compute_signature(SECRET, b" "), [SECRET])


def test_empty_secret_is_never_accepted_even_with_its_own_signature() -> None:
    # WooCommerce allows an empty secret, with which anyone can sign; we refuse that configuration.
    assert not signature_matches(BODY, compute_signature("", BODY), ["", ""])
    assert not signature_matches(BODY, compute_signature("", BODY), [])


def test_non_ascii_header_is_rejected_without_error() -> None:
    assert not signature_matches(BODY, "sïgnätüre\udcff", [SECRET])


def test_hex_digest_is_not_accepted_for_a_base64_scheme() -> None:
    hex_digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert not signature_matches(BODY, hex_digest, [SECRET])


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("plain-secret", ("plain-secret",)),
        ("  padded  ", ("padded",)),
        ('["new", "old"]', ("new", "old")),
        ('{"secrets": ["new", "old"], "note": "rotating 2026-11"}', ("new", "old")),
        ('["new", "", 7]', ("new",)),
        ("", ()),
        ('{"other": 1}', ()),
        ("[not json", ("[not json",)),
    ],
)
def test_parse_accepted_secrets(stored: str, expected: tuple[str, ...]) -> None:
    assert parse_accepted_secrets(stored) == expected


@pytest.mark.parametrize(
    ("configured", "key"),
    [
        ("plain", "plain"),
        ("a&amp;b", "a&b"),
        ("&lt;tag&gt; &quot;q&quot; &#039;s&#039;", "<tag> \"q\" 's'"),
        ("&amp;lt;", "&lt;"),
    ],
)
def test_woocommerce_secret_is_decoded_like_wp_specialchars_decode(configured: str, key: str) -> None:
    assert decode_woocommerce_secret(configured) == key
