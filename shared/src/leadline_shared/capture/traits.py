"""The identifiers a captured event's traits give: a canonical email and phone (the one rule of
:mod:`leadline_shared.identifiers`) and the site's own user id; values that do not parse are left out."""

from __future__ import annotations

from typing import Any

from leadline_shared.identifiers import canonical_email, canonical_phone


def identifiers(traits: dict[str, Any], default_region: str) -> dict[str, str]:
    """Usable identifiers from identify traits (or form fields); values that do not parse are left out."""
    ids: dict[str, str] = {}
    email, phone = traits.get("email"), traits.get("phone")
    if isinstance(email, str) and email.strip() and (canonical := canonical_email(email)) is not None:
        ids["email"] = canonical
    if (
        isinstance(phone, str)
        and phone.strip()
        and (canonical := canonical_phone(phone, default_region)) is not None
    ):
        ids["phone"] = canonical
    if isinstance(traits.get("user_id"), str | int) and str(traits["user_id"]).strip():
        ids["user_id"] = str(traits["user_id"])[:200]
    return ids
