"""The shop: what a player can buy with currency, defined by the tenant's rule set.

Currency itself is earned by XP rules (``currency: N`` on a rule, see engine/xp_rules.py) and by
quest rewards; it is spent here. The engine only describes items and checks a purchase against
the player's balance and holdings; the balance lives in an append-only ledger applied by
questline/currency.py under a row lock, so two concurrent purchases cannot both spend the same
coins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.xp_rules import RULE_ID_PATTERN

MAX_PRICE = 1_000_000
STREAK_FREEZE = "streak_freeze"  # the inventory item the streak engine uses up on a missed day
SHOP_FIELDS = {"id", "name", "price", "item", "quantity", "limit", "description"}


@dataclass(frozen=True)
class ShopItem:
    """``price`` coins buy ``quantity`` of the inventory ``item``; ``limit`` caps how many of
    that item a player may hold (streak freezes are also capped by ``streaks.max_freezes``)."""

    id: str
    name: str
    price: int
    item: str
    quantity: int = 1
    limit: int | None = None
    description: str = ""


class PurchaseRefused(ValueError):
    """A purchase that must not happen; ``reason`` is shown to the player."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # "insufficient_funds" or "limit_reached"


def check_purchase(item: ShopItem, balance: int, held: int, max_freezes: int) -> int:
    """The balance after buying ``item`` once, or ``PurchaseRefused``.

    ``held`` is how many of ``item.item`` the player owns now. Pure, so the API and a test can
    share the rule; the caller must hold the player's row lock while it applies the result.
    """
    limit = item.limit
    if item.item == STREAK_FREEZE:
        limit = max_freezes if limit is None else min(limit, max_freezes)
    if limit is not None and held + item.quantity > limit:
        raise PurchaseRefused(
            f"you hold {held} {item.item}; at most {limit} are allowed", "limit_reached"
        )
    if balance < item.price:
        raise PurchaseRefused(
            f"{item.name} costs {item.price} and the balance is {balance}", "insufficient_funds"
        )
    return balance - item.price


def _count(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def parse_shop_item(raw: Any, path: str, seen: set[str], errors: list[str]) -> ShopItem | None:
    """One entry of ``shop``; None (with errors appended) when it is invalid."""
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: must be an object")
        return None
    before = len(errors)
    item_id = raw.get("id")
    if not isinstance(item_id, str) or not RULE_ID_PATTERN.fullmatch(item_id):
        errors.append(f"{path}.id: must be 1-100 lowercase letters, digits or . _ -")
    elif item_id in seen:
        errors.append(f"{path}.id: duplicate shop item id {item_id!r}")
    name = raw.get("name", item_id)
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        errors.append(f"{path}.name: must be text of 1-200 characters")
    price = raw.get("price")
    if not _count(price, 1, MAX_PRICE):
        errors.append(f"{path}.price: must be an integer from 1 to {MAX_PRICE}")
    item = raw.get("item", item_id)
    if not isinstance(item, str) or not RULE_ID_PATTERN.fullmatch(item):
        errors.append(f"{path}.item: must be 1-100 lowercase letters, digits or . _ -")
    quantity = raw.get("quantity", 1)
    if not _count(quantity, 1, 1000):
        errors.append(f"{path}.quantity: must be an integer from 1 to 1000")
    limit = raw.get("limit")
    if limit is not None and not _count(limit, 1, 1_000_000):
        errors.append(f"{path}.limit: must be a positive integer")
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{path}.description: must be text")
    errors.extend(f"{path}.{k}: unknown field" for k in sorted(set(raw) - SHOP_FIELDS))
    if len(errors) > before:
        return None
    seen.add(str(item_id))
    assert isinstance(price, int) and isinstance(quantity, int)
    return ShopItem(str(item_id), str(name), price, str(item), quantity, limit, str(description))
