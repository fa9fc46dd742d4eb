"""Which identifiers an event carries, in canonical form (architecture.md §4).

Emails and phones take the canonical form every service shares (leadline_shared.identifiers); a ``crm_contact_id`` (the id crm-core gave a person a rep entered) must be a UUID and is kept in
canonical form. A value that is blocked, malformed or erased never counts as an identifier: it cannot join
two people, and it cannot rebuild an erased one. Normalising is cached because the same few values repeat.

Only crm-core says which CRM person someone is: a ``crm_contact_id`` counts on events of source ``api`` (what
crm-core writes) and nowhere else, so nothing a browser sends can attach itself to a CRM person.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

from leadline_shared.events import IDENTIFIER_TYPES, RawEvent
from leadline_shared.identifiers import DEFAULT_PHONE_REGION, canonical_email, canonical_phone

Ident = tuple[str, str]  # (type, canonical value)

STRENGTH: tuple[str, ...] = (*IDENTIFIER_TYPES, "anon_id")
"""Strongest first: the event stays on the person of its strongest identifier when persons conflict."""

CONFLICTING_TYPES = ("email", "user_id")
"""Two persons that both hold identifiers of one of these types are never merged automatically."""

BUILTIN_BLOCKED = frozenset(
    {"", "null", "undefined", "anonymous", "none", "0", "-1", "[object object]", "nan", "n/a"}
)
DEFAULT_LIMITS = {"email": 5, "phone": 5, "user_id": 1, "anon_id": 200}
CRM_CONTACT = "crm_contact_id"
CRM_SOURCES = frozenset({"api"})
"""Sources whose events may name a CRM person (crm-core's rep entries)."""


@dataclass(frozen=True)
class IdentifierRules:
    """What counts as an identifier: blocked values, per-person limits, the phone numbers' default region."""

    blocked: frozenset[str] = BUILTIN_BLOCKED
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    phone_region: str = DEFAULT_PHONE_REGION

    @classmethod
    def create(
        cls,
        extra_blocked: tuple[str, ...] = (),
        limits: dict[str, int] | None = None,
        phone_region: str = DEFAULT_PHONE_REGION,
    ) -> IdentifierRules:
        """The built-in blocked values plus the configured ones (compared lower-cased)."""
        return cls(
            blocked=BUILTIN_BLOCKED | {v.strip().lower() for v in extra_blocked},
            limits={**DEFAULT_LIMITS, **(limits or {})},
            phone_region=phone_region.upper(),
        )

    def limit(self, kind: str) -> int | None:
        """Most identifiers of ``kind`` one person may hold (None: no limit)."""
        return self.limits.get(kind)


def normalise_uuid(raw: str) -> str | None:
    """The canonical form of a UUID (lower-case, hyphenated); None for anything else, the nil UUID included."""
    try:
        value = uuid.UUID(raw)
    except ValueError:
        return None
    return str(value) if value.int else None


def normalise(kind: str, raw: str, rules: IdentifierRules) -> str | None:
    """The canonical value of one identifier, None when it must not count."""
    value = raw.strip()
    if value.lower() in rules.blocked or len(value) > 512:
        return None
    if kind == "email":
        canonical = canonical_email(value)
    elif kind == "phone":
        canonical = canonical_phone(value, rules.phone_region)
    elif kind == CRM_CONTACT:
        canonical = normalise_uuid(value)
    else:
        canonical = value
    if canonical is None or canonical.lower() in rules.blocked:
        return None
    return canonical


def identifiers_of(event: RawEvent, rules: IdentifierRules) -> list[Ident]:
    """The event's usable identifiers, strongest first."""
    found: list[Ident] = []
    ids = event.ids
    if ids:
        for kind in IDENTIFIER_TYPES:
            raw = ids.get(kind)
            if raw is None or (kind == CRM_CONTACT and event.source not in CRM_SOURCES):
                continue
            if (value := normalise(kind, raw, rules)) is not None:
                found.append((kind, value))
    if event.anon_id is not None and (anon := normalise("anon_id", event.anon_id, rules)) is not None:
        found.append(("anon_id", anon))
    return found


def digest(ident: Ident) -> bytes:
    """What a tombstone keeps of an erased identifier: a hash, never the value itself."""
    return hashlib.sha256(f"{ident[0]}\x00{ident[1]}".encode()).digest()
