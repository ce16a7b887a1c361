"""The queue message contract: what the webhook functions write, and what the consumer accepts."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fanfare_sync.models.queue_message import (
    _ADMISSION_RULES,
    _MESSAGE_RULES,
    Admission,
    InvalidQueueMessageError,
    OrderEventKind,
    OrderMessage,
    Platform,
    _problems,
)


def admission(**overrides: Any) -> Admission:
    fields = {"distributionId": "queue_01", "distributionType": "queue", "consumerId": "cons_01"}
    return Admission(**{**fields, **overrides})


def message(**overrides: Any) -> OrderMessage:
    fields: dict[str, Any] = {
        "kind": OrderEventKind.PAID,
        "platform": Platform.SHOPIFY,
        "shop": "café.myshopify.com",
        "orderId": "42",
        "topic": "orders/paid",
        "deliveryId": "wh-1",
        "receivedAt": "2026-11-27T00:00:00.000Z",
        "admissions": (admission(consumerId='c"é\u2028\x01\n'),),
        "amount": "199.00",
        "itemCount": 3,
    }
    return OrderMessage(**{**fields, **overrides})


def body(**overrides: Any) -> str:
    data = json.loads(message().to_json())
    data.update(overrides)
    return json.dumps(data)


def test_json_is_byte_for_byte_what_the_pydantic_model_wrote() -> None:
    # Captured from the pydantic v2 model's model_dump_json() before it was replaced: compact, keys in
    # contract order, non-ASCII as UTF-8, control characters escaped, nulls kept.
    assert message().to_json() == (
        '{"v":1,"kind":"order.paid","platform":"shopify","shop":"café.myshopify.com","orderId":"42",'
        '"topic":"orders/paid","deliveryId":"wh-1","eventId":null,"triggeredAt":null,'
        '"receivedAt":"2026-11-27T00:00:00.000Z","admissions":[{"distributionId":"queue_01",'
        '"distributionType":"queue","consumerId":"c\\"é\u2028\\u0001\\n"}],"amount":"199.00",'
        '"currency":null,"itemCount":3}'
    )
    minimal = OrderMessage(
        kind=OrderEventKind.REFUNDED,
        platform=Platform.WOOCOMMERCE,
        shop="s",
        orderId="1",
        topic="t",
        receivedAt="r",
    )
    assert minimal.to_json() == (
        '{"v":1,"kind":"order.refunded","platform":"woocommerce","shop":"s","orderId":"1","topic":"t",'
        '"deliveryId":null,"eventId":null,"triggeredAt":null,"receivedAt":"r","admissions":[],"amount":null,'
        '"currency":null,"itemCount":0}'
    )


def test_parsing_what_was_written_gives_the_same_message() -> None:
    original = message()
    parsed = OrderMessage.from_json(original.to_json())
    assert parsed == original
    assert parsed.kind is OrderEventKind.PAID
    assert parsed.platform is Platform.SHOPIFY
    assert isinstance(parsed.admissions, tuple)
    assert OrderMessage.from_json(original.to_json().encode("utf-8")) == original


def test_optional_fields_may_be_omitted_and_v_defaults_to_1() -> None:
    parsed = OrderMessage.from_json(
        '{"kind":"order.cancelled","platform":"woocommerce","shop":"s","orderId":"1","topic":"t","receivedAt":"r"}'
    )
    assert (parsed.v, parsed.admissions, parsed.itemCount, parsed.amount) == (1, (), 0, None)


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ("not json", ["body is not valid JSON"]),
        ("[1, 2]", ["body is not a JSON object"]),
        (
            '{"v": 1}',
            [f"{name}: missing" for name in ("kind", "platform", "shop", "orderId", "topic", "receivedAt")],
        ),
        (body(extra=1), ["extra: unknown field"]),
        (body(v=2), ["v: must be 1"]),
        (body(v=True), ["v: must be 1"]),
        (body(kind="order.exploded"), ["kind: must be one of order.paid, order.cancelled, order.refunded"]),
        (body(platform="magento"), ["platform: must be one of shopify, woocommerce"]),
        (body(shop=""), ["shop: must be a non-empty string"]),
        (body(orderId=42), ["orderId: must be a non-empty string"]),
        (body(topic=None), ["topic: must be a string"]),
        (body(amount=199.0), ["amount: must be a decimal string or null"]),
        (body(itemCount=True), ["itemCount: must be an integer"]),
        (body(itemCount="3"), ["itemCount: must be an integer"]),
        (body(admissions={}), ["admissions: must be a list of admissions"]),
        (body(admissions=[1]), ["admissions[0]: must be an object"]),
        (
            body(
                admissions=[{"distributionId": "q", "distributionType": "queue", "consumerId": "c", "x": 1}]
            ),
            ["admissions[0].x: unknown field"],
        ),
        (
            body(admissions=[{"distributionId": "q" * 201, "distributionType": "t" * 51, "consumerId": ""}]),
            [
                "admissions[0].distributionId: must be a string of 1 to 200 characters",
                "admissions[0].distributionType: must be a string of 1 to 50 characters",
                "admissions[0].consumerId: must be a string of 1 to 200 characters",
            ],
        ),
    ],
)
def test_a_body_outside_the_contract_is_rejected_with_every_problem_named(
    raw: str, problems: list[str]
) -> None:
    with pytest.raises(InvalidQueueMessageError) as raised:
        OrderMessage.from_json(raw)
    assert list(raised.value.problems) == problems
    assert raised.value.problem_count == len(problems)
    assert str(raised.value).startswith(f"{len(problems)} problem(s): ")


def test_problems_are_all_counted_and_never_quote_values() -> None:
    secretish = "sk_live_do_not_echo"
    with pytest.raises(InvalidQueueMessageError) as raised:
        OrderMessage.from_json(
            json.dumps({"kind": secretish, "shop": 7, "extra": secretish, "admissions": [[]]})
        )
    # extra, admissions[0], kind, shop, and platform, orderId, topic, receivedAt missing
    assert raised.value.problem_count == 8
    assert secretish not in str(raised.value)


def test_the_same_rules_hold_when_a_message_is_built() -> None:
    with pytest.raises(InvalidQueueMessageError, match="consumerId"):
        admission(consumerId="c" * 201)
    with pytest.raises(InvalidQueueMessageError, match="distributionType"):
        admission(distributionType="")
    with pytest.raises(InvalidQueueMessageError, match="shop"):
        message(shop="")
    with pytest.raises(InvalidQueueMessageError, match="kind"):
        message(kind="order.paid")  # a plain string: consumers rely on `message.kind.value`
    with pytest.raises(InvalidQueueMessageError, match="admissions"):
        message(admissions=[admission()])
    with pytest.raises(InvalidQueueMessageError, match="itemCount"):
        message(itemCount=False)
    with pytest.raises(TypeError):
        OrderMessage("order.paid")  # type: ignore[call-arg,misc]  # keyword-only, like the JSON it mirrors


def test_messages_are_immutable_and_comparable() -> None:
    built = message()
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.orderId = "43"  # type: ignore[misc]
    assert built == message()
    assert dataclasses.replace(built, kind=OrderEventKind.CANCELLED).kind is OrderEventKind.CANCELLED
    with pytest.raises(InvalidQueueMessageError):
        dataclasses.replace(built, orderId="")


# Values for each field, good and bad: a valid message with one of them swapped in must be judged alike by
# the fast check and by the rules.
_CANDIDATES = [
    None,
    0,
    1,
    2,
    -1,
    True,
    1.0,
    "",
    "x",
    "1",
    "order.paid",
    OrderEventKind.PAID,
    Platform.SHOPIFY,
]
_CANDIDATES_BY_FIELD: dict[str, list[Any]] = {
    "admissions": [(), (admission(),), [admission()], ("not an admission",), None],
}
_ADMISSION_CANDIDATES = [None, 1, "", "x", "q" * 50, "q" * 51, "q" * 200, "q" * 201, OrderEventKind.PAID]


def _unchecked(cls: type[Any], values: dict[str, Any]) -> Any:
    instance = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(instance, name, value)
    return instance


def test_the_fast_checks_agree_with_the_rules_field_by_field() -> None:
    valid = message()._values()
    for name in valid:
        for candidate in _CANDIDATES_BY_FIELD.get(name, _CANDIDATES):
            values = {**valid, name: candidate}
            expected = _problems(_MESSAGE_RULES, values) == []
            assert _unchecked(OrderMessage, values)._is_valid() == expected, (name, candidate)
    valid = admission()._values()
    for name in valid:
        for candidate in _ADMISSION_CANDIDATES:
            values = {**valid, name: candidate}
            expected = _problems(_ADMISSION_RULES, values) == []
            assert _unchecked(Admission, values)._is_valid() == expected, (name, candidate)


@given(
    st.fixed_dictionaries(
        {
            name: st.sampled_from(_CANDIDATES_BY_FIELD.get(name, _CANDIDATES))
            for name in OrderMessage.__dataclass_fields__
        }
    )
)
def test_the_fast_message_check_agrees_with_the_rules_on_any_mix(values: dict[str, Any]) -> None:
    assert _unchecked(OrderMessage, values)._is_valid() == (_problems(_MESSAGE_RULES, values) == [])
