"""The one case-insensitive key: when two strings are "the same name" everywhere in scim.

`key(text)` is Unicode canonical caseless matching (The Unicode Standard §3.13, D145):
canonical decomposition (NFD), then full case folding (`str.casefold`), stored recomposed
(NFC). So a name matches itself in any letter case and in any canonically equivalent
form (precomposed "é" or "e" + combining accent), and nothing looser: compatibility
look-alikes (full-width "Ｈｘ", the ligature "ﬁ", superscript "²") are different names.

Every case-insensitive comparison uses it: filters in SQL (the stored `*_key` columns)
and in Python (RFC 7643 §2.2 caseExact false), PATCH de-duplication of multi-valued
elements, userName and email lookups, group displayName uniqueness, role-mapping names
and token names; `get` finds a JSON attribute or message key in any case (RFC 7643 §2.1).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any


def key(text: str) -> str:
    """Return the case-insensitive key of `text`: NFD, then str.casefold, then NFC (Unicode D145)."""
    if text.isascii():  # normalisation leaves ASCII as it is, and casefold maps only A-Z
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def same(a: str, b: str) -> bool:
    """Say whether two strings are the same case-insensitively (by `key`)."""
    return a == b or key(a) == key(b)


def get(data: object, name: str, default: Any = None) -> Any:
    """Return the value of `name` in a JSON object, its key matched case-insensitively (RFC 7643 §2.1)."""
    if not isinstance(data, Mapping):
        return default
    if name in data:
        return data[name]
    wanted = key(name)
    return next((v for k, v in data.items() if isinstance(k, str) and key(k) == wanted), default)
