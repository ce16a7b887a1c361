"""Find the Fanfare admissions an order carries, for both platforms.

The storefront puts three values on the order (Shopify note attributes / WooCommerce order meta) or on
each line item (Shopify line-item properties / WooCommerce item meta), so one order can carry several
admissions. Names are accepted with or without the leading underscore that hides them from the shopper:
`fanfare_distribution_id` / `_fanfare_distribution_id`, and the same for `distribution_type`, `consumer_id`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from fanfare_sync.models.queue_message import Admission

FIELD_DISTRIBUTION_ID = "fanfare_distribution_id"
FIELD_DISTRIBUTION_TYPE = "fanfare_distribution_type"
FIELD_CONSUMER_ID = "fanfare_consumer_id"
FANFARE_FIELDS = (FIELD_DISTRIBUTION_ID, FIELD_DISTRIBUTION_TYPE, FIELD_CONSUMER_ID)

# Far above any real order; it bounds the message size a signed but absurd payload could produce.
MAX_ADMISSIONS_PER_ORDER = 100


class FoundAdmissions(NamedTuple):  # a NamedTuple: cheaper to define at a cold start than a dataclass
    admissions: tuple[Admission, ...]
    # True when some Fanfare fields were present but did not form a whole admission (a storefront bug
    # worth an operator's attention, never a reason to fail the webhook).
    incomplete: bool
    too_many: bool = False

    @property
    def has_fanfare_data(self) -> bool:
        return bool(self.admissions) or self.incomplete


def read_fanfare_fields(pairs: Any, name_key: str, value_key: str = "value") -> dict[str, str]:
    """Pick the Fanfare fields out of a list of {name|key, value} objects; anything else is ignored."""
    found: dict[str, str] = {}
    if not isinstance(pairs, list):
        return found
    for pair in pairs:
        if not isinstance(pair, Mapping):
            continue
        name = pair.get(name_key)
        if not isinstance(name, str):
            continue
        field = name.strip().lstrip("_").lower()
        if field not in FANFARE_FIELDS:
            continue
        value = _as_text(pair.get(value_key))
        if value:
            found[field] = value
    return found


def collect_admissions(
    order_fields: dict[str, str], line_fields: Iterable[dict[str, str]]
) -> FoundAdmissions:
    """Order-level fields form one admission; each line item with fields forms another.

    A line item that names only its distribution inherits the rest (typically the consumer id) from the
    order level, since one consumer checks out the whole cart.
    """
    candidates: list[dict[str, str]] = []
    if order_fields:
        candidates.append(order_fields)
    candidates.extend({**order_fields, **fields} for fields in line_fields if fields)

    admissions: dict[tuple[str, str], Admission] = {}
    incomplete = False
    for fields in candidates:
        admission = _admission_from(fields)
        if admission is None:
            incomplete = True
            continue
        admissions.setdefault((admission.distributionId, admission.consumerId), admission)
    found = tuple(admissions.values())
    if len(found) > MAX_ADMISSIONS_PER_ORDER:
        return FoundAdmissions(admissions=(), incomplete=True, too_many=True)
    return FoundAdmissions(admissions=found, incomplete=incomplete)


def _admission_from(fields: dict[str, str]) -> Admission | None:
    distribution_id = fields.get(FIELD_DISTRIBUTION_ID)
    distribution_type = fields.get(FIELD_DISTRIBUTION_TYPE)
    consumer_id = fields.get(FIELD_CONSUMER_ID)
    if not (distribution_id and distribution_type and consumer_id):
        return None
    if max(len(distribution_id), len(consumer_id)) > 200 or len(distribution_type) > 50:
        return None
    return Admission(
        distributionId=distribution_id,
        distributionType=distribution_type.lower(),
        consumerId=consumer_id,
    )


def _as_text(value: Any) -> str:
    # Ids arrive as strings or, from some plugins, as integers; booleans and objects are not ids.
    if isinstance(value, bool):
        return ""
    if isinstance(value, str | int):
        return str(value).strip()
    return ""
