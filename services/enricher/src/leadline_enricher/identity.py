"""Identity resolution: which person is behind an event's identifiers (architecture.md §4).

Rules:
- an event whose identifiers belong to one person joins that person; identifiers new to the graph are
  attached to it (up to the per-type limits);
- identifiers of several persons seen together merge those persons into the owner of the strongest one, unless
  two of them each hold an email (or a user_id): then nothing is merged, a conflict is recorded for review and
  the event stays on the person of its strongest identifier;
- events from bots and link scanners are attributed to a known person but never attach or merge anything;
- erased identifiers (tombstones) are ignored, so nothing rebuilds an erased person;
- every event that hits the conflict rule is also announced as a ``conflict`` change (the two persons and the
  identifier's type), so crm-core can show it to a rep; a rep who confirms the two are one person makes
  crm-core send a ``merge`` request (:func:`leadline_shared.events.merge_request`), and the graph merges them
  regardless of the conflict rule and of the per-type limits (:meth:`_Batch._forced_merge`);
- a ``crm_contact_id`` (a person crm-core knows, sent by crm-core when a rep enters a lead or a contact detail)
  is an identifier like the others, with two twists so that crm-core's row and the graph agree on one id:
  when none of the event's identifiers is owned yet, the new person takes the CRM's id instead of a new one;
  and a value naming a person of the graph (crm-core's persons mostly carry the enricher's ids) is owned by
  that person, or the one it was merged into, without a row of its own. A CRM person new to the graph whose
  email or phone another person already holds becomes a person of its own, merged at once into that one by
  the rules above (the owner of the strongest identifier survives; crm-core folds the rep's record into it).

Speed: a batch of events is resolved together, in order, against an in-memory view. Hot identifiers come
from an in-process LRU cache, the rest from one set-based query, and the identifier counts of the persons the
batch may extend or merge from one more. New persons, new identifiers, merges and conflicts are then written
together at the end of the batch (merged persons locked and re-checked first). Creation relies on the primary
key of ``identifiers`` (insert, count what went in) so that two replicas never make two persons for one
identifier; a batch that loses such a race, or finds its persons changed by another replica, is retried (first
without the cache, at last one event at a time on the locked per-event path, :func:`_resolve_locked`).

Known limit: attaching a new identifier to an existing person does not lock it, so two replicas attaching to
one person at the same instant may pass a per-type limit by one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import orjson

from leadline_enricher import queries
from leadline_enricher.identifiers import CONFLICTING_TYPES, CRM_CONTACT, Ident, IdentifierRules, digest
from leadline_shared.events import IdentityChange
from leadline_shared.ids import new_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Work:
    """One event to resolve: its identifiers (strongest first) and whether it may identify anyone."""

    ids: list[Ident]
    identify: bool = True
    event_id: str = ""
    detach: tuple[Ident, ...] = ()
    """For the CRM's ``unlink``: identifiers the person named by ``ids`` (its crm_contact_id) no longer holds."""
    merge: tuple[str, ...] = ()
    """For the CRM's ``merge`` request: the persons a rep confirmed are the one named by ``ids``."""


@dataclass
class BatchResult:
    """Who each event belongs to, and what changed in the graph while finding out."""

    persons: list[str]
    changes: list[IdentityChange] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    slow: int = 0
    learned: dict[Ident, str] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    forgotten: list[Ident] = field(default_factory=list)
    identity: list[dict[str, list[str]]] = field(default_factory=list)
    """Per event, the types of its identifiers its person holds and those it does not (EnrichedEvent.identity)."""


LINK_TYPES = frozenset({"email", "phone", "user_id"})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def merge_change(survivor: str, merged: list[str]) -> IdentityChange:
    """The persons in ``merged`` are now ``survivor`` (crm-core re-points their history)."""
    return IdentityChange(change_id=new_id(), kind="merge", person_id=survivor, at=_now(), merged=merged)


def link_change(person: str, kind: str, value: str, change: str = "link") -> IdentityChange:
    """An identifier of ``kind`` now belongs to an existing person; with ``change`` "unlink", one no longer does
    (the CRM took it off the person).

    The change names the identifier's type, never its value: identity.changes.v1 is kept forever, so a value
    written there would outlive the person's erasure (issue 11, item 7). Who needs the value has it already:
    crm-core from the enriched event that carried it, other replicas from the graph (they forget the person's
    cached identifiers on an unlink). ``value`` is accepted so the callers keep one signature.
    """
    del value  # deliberately not carried
    return IdentityChange(
        change_id=new_id(), kind=change, person_id=person, at=_now(), identifier={"type": kind}
    )


def conflict_change(person: str, other: str, kind: str, event_id: str) -> IdentityChange:
    """Event ``event_id`` carried identifiers of ``person`` (the one it stays on) and of ``other`` that the conflict
    rule keeps apart: both hold an identifier of type ``kind``. The type only, never a value."""
    return IdentityChange(
        change_id=new_id(),
        kind="conflict",
        person_id=person,
        at=_now(),
        identifier={"type": kind},
        other=other,
        event_id=event_id,
    )


class RaceLost(Exception):
    """Another replica claimed an identifier this batch was about to create: retry the batch."""


class IdentityGraph:
    """The identity graph of one enricher process, with its cache of hot identifiers."""

    def __init__(self, rules: IdentifierRules, cache_size: int = 200_000) -> None:
        self.rules = rules
        self.cache_size = cache_size
        self._cache: OrderedDict[Ident, str] = OrderedDict()
        self._redirect: dict[str, str] = {}

    def cached(self, ident: Ident) -> str | None:
        """The person owning ``ident`` according to the cache (merges followed)."""
        person = self._cache.get(ident)
        if person is None:
            return None
        self._cache.move_to_end(ident)
        return self._redirect.get(person, person)

    def forget(self, person_ids: set[str]) -> None:
        """Drop every cached identifier of these persons (they were erased)."""
        redirect = self._redirect
        for ident in [
            i for i, p in self._cache.items() if redirect.get(p, p) in person_ids or p in person_ids
        ]:
            del self._cache[ident]

    def follow(self, merged: list[str], survivor: str) -> None:
        """Persons merged elsewhere (perhaps by another replica) now resolve to ``survivor``."""
        for person in merged:
            self._redirect[person] = survivor
        for person, target in list(self._redirect.items()):
            if target in merged:
                self._redirect[person] = survivor

    def apply(self, change: IdentityChange) -> None:
        """Keep the cache true to a change made elsewhere (another replica, ``leadline erase``)."""
        if change.kind == "merge":
            self.follow(change.merged, change.person_id)
        elif change.kind == "erase":
            self.forget({change.person_id, *change.merged})
        elif change.kind == "unlink":  # the change names no value: forget the person's cached identifiers
            self.forget({change.person_id})

    def commit(self, result: BatchResult) -> None:
        """After the PostgreSQL transaction committed: remember what the batch learned, forget what it let go."""
        cache = self._cache
        for ident in result.forgotten:
            if ident not in result.learned:
                cache.pop(ident, None)
        for ident, person in result.learned.items():
            cache[ident] = person
            cache.move_to_end(ident)
        for change in result.changes:
            if change.kind == "merge":
                self.follow(change.merged, change.person_id)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)
        if len(self._redirect) > self.cache_size:  # merged persons are rare; a cap keeps memory bounded
            self._redirect.clear()
            cache.clear()

    async def resolve_batch(self, conn: asyncpg.Connection, work: list[Work]) -> BatchResult:
        """Resolve every event of a batch inside the caller's transaction (a savepoint per attempt)."""
        for attempt in range(5):
            try:
                async with conn.transaction():
                    return await _Batch(self, conn, slow_only=attempt >= 3, use_cache=attempt == 0).run(work)
            except RaceLost:
                log.info("identifier race lost, retrying the batch without the cache")
            except asyncpg.DeadlockDetectedError:
                # Another replica wrote the same new identifiers in another order; PostgreSQL aborted us.
                log.info("deadlock with another replica, retrying the batch")
                await asyncio.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise RuntimeError("identity resolution kept colliding with other replicas; giving up on this batch")


class _Batch:
    """The state of resolving one batch: what is known, and the graph changes not yet written.

    Events are resolved in order against an in-memory view (``known``: identifier → person). New persons,
    new identifiers, merges and conflicts are collected and written together by :meth:`_flush`, which first
    locks the database persons it merges and checks that nobody changed them since they were read (else the
    batch is retried). Only events whose persons' counts were not loaded take the per-event slow path.
    """

    def __init__(
        self, graph: IdentityGraph, conn: asyncpg.Connection, slow_only: bool = False, use_cache: bool = True
    ) -> None:
        self.graph = graph
        self.rules = graph.rules
        self.conn = conn
        self.slow_only = slow_only
        self.use_cache = use_cache and not slow_only
        self.known: dict[Ident, str] = {}
        self.tombstoned: set[Ident] = set()
        self.new_persons: list[str] = []
        self.new_ids: list[tuple[str, str, str]] = []
        self.counts: dict[str, Counter[str]] = {}  # persons whose identifier counts are known here
        self.db_counts: dict[str, Counter[str]] = {}  # as read from PostgreSQL, to detect concurrent changes
        self.merges: list[IdentityChange] = []
        self.links: list[tuple[str, str, str]] = []  # (person, type, value) known identifiers newly attached
        self.redirect: dict[str, str] = {}  # merged in this batch → survivor
        self.conflicts: list[tuple[str, str, str, str]] = []  # (event's person, other, type, event id)
        self.result = BatchResult(persons=[])

    async def run(self, work: list[Work]) -> BatchResult:
        await self._load({i for w in work for i in w.ids})
        if not self.slow_only:
            await self._load_counts(work)
        persons = self.result.persons
        for w in work:
            ids = [i for i in w.ids if i not in self.tombstoned] if self.tombstoned else w.ids
            persons.append(await self._one(w, ids))
        await self._flush()  # earlier events keep the person they had; the merge change re-points them
        self.result.identity = self._verdicts(work, persons)
        return self.result

    def _verdicts(self, work: list[Work], persons: list[str]) -> list[dict[str, list[str]]]:
        """Which of each event's identifiers its person holds once the batch is resolved, and which not (another
        person's that the conflict rule kept apart, over a limit, erased, a bot's): downstream records only the
        first on the person, so the CRM never shows a value the graph gave someone else (issue 11)."""
        merged_into = {m: c.person_id for c in self.result.changes if c.kind == "merge" for m in c.merged}

        def final(person: str) -> str:
            for _ in range(len(merged_into) + 1):
                if person not in merged_into:
                    break
                person = merged_into[person]
            return person

        verdicts = []
        for w, person in zip(work, persons, strict=True):
            holder = final(person)
            attached: list[str] = []
            refused: list[str] = []
            for ident in w.ids:
                owner = self.known.get(ident)
                (attached if owner is not None and final(owner) == holder else refused).append(ident[0])
            verdicts.append({"attached": attached, "refused": refused})
        return verdicts

    async def _load(self, idents: set[Ident]) -> None:
        """Owners and tombstones of the batch's identifiers: cache first, one query for the rest."""
        misses: list[Ident] = []
        for ident in idents:
            person = self.graph.cached(ident) if self.use_cache else None
            if person is None:
                misses.append(ident)
            else:
                self.known[ident] = person
        if not misses:
            return
        rows = await self.conn.fetch(
            queries.LOOKUP, [t for t, _ in misses], [v for _, v in misses], [digest(i) for i in misses]
        )
        for kind, value, person, erased in rows:
            if erased:
                self.tombstoned.add((kind, value))
            elif person is not None:
                self.known[(kind, value)] = person
                self.result.learned[(kind, value)] = person
        contacts = [
            i for i in misses if i[0] == CRM_CONTACT and i not in self.known and i not in self.tombstoned
        ]
        if contacts:
            owners, erased_contacts = await _contact_owners(self.conn, contacts)
            self.tombstoned.update(erased_contacts)
            self.known.update(owners)
            self.result.learned.update(owners)

    async def _load_counts(self, work: list[Work]) -> None:
        """Identifier counts of every known person that an event may attach to or merge, in one query.

        With these, limits and the conflict rule are checked in memory and the changes are written with the
        batch instead of one locked round trip after another per event.
        """
        known = self.known
        targets: set[str] = set()
        for w in work:
            if w.identify and len(w.ids) > 1:
                targets.update(known[i] for i in w.ids if i in known)
        if targets:
            loaded = await _counts(self.conn, list(targets))
            for person in targets:
                counts = loaded.get(person, Counter())
                self.db_counts[person] = counts
                self.counts[person] = Counter(counts)

    def _final(self, person: str) -> str:
        while person in self.redirect:
            person = self.redirect[person]
        return person

    def _split(self, ids: list[Ident]) -> tuple[list[str], list[Ident]]:
        """The persons owning some of ``ids`` (strongest identifier's first), and the identifiers nobody owns."""
        owners: list[str] = []
        unowned: list[Ident] = []
        for ident in ids:
            person = self.known.get(ident)
            if person is None:
                unowned.append(ident)
            elif person not in owners:
                owners.append(person)
        return owners, unowned

    async def _one(self, w: Work, ids: list[Ident]) -> str:
        if w.detach:
            return await self._detach(ids, w.detach)
        if w.merge:
            return await self._forced_merge(ids, w.merge, w.event_id)
        if not ids:
            return new_id()  # nothing to tie it to: a person of its own that nothing can join later
        owners, unowned = self._split(ids)
        if not w.identify:
            return self._unidentified(owners, ids)
        if self.slow_only:
            return await self._slow(w, ids)
        contact = next((i for i in unowned if i[0] == CRM_CONTACT), None)
        if not owners:
            return self._create(ids, adopt=contact)
        if contact is not None:  # the CRM's person joins the graph under its id, then merges like any other
            self._create([contact], adopt=contact)
            owners, unowned = self._split(ids)
        if len(owners) == 1 and not unowned:
            return owners[0]
        if all(o in self.counts for o in owners):
            survivor = self._merge(owners, w.event_id) if len(owners) > 1 else owners[0]
            if unowned:
                self._attach_new(survivor, unowned)
            return survivor
        return await self._slow(w, ids)

    async def _detach(self, ids: list[Ident], detach: tuple[Ident, ...]) -> str:
        """The CRM took identifiers off its person: let them go if that person holds them; returns the person.

        Written at once (after what the batch collected so far), so later events of the batch carrying one of
        them find it free. A crm_contact_id the graph does not know names crm-core's own row: nothing to let go.
        """
        contact = next((i for i in ids if i[0] == CRM_CONTACT), None)
        if contact is None:
            return new_id()
        owner = self.known.get(contact)
        if owner is None:
            return contact[1]
        await self._flush()
        owner = self._final(owner)
        rows = await self.conn.fetch(queries.DETACH, owner, [t for t, _ in detach], [v for _, v in detach])
        changes = [link_change(owner, kind, value, "unlink") for kind, value in rows]
        await record_identifier_changes(self.conn, changes)
        self.result.changes.extend(changes)
        for kind, value in rows:
            ident = (kind, value)
            self.known.pop(ident, None)
            self.result.learned.pop(ident, None)
            self.result.forgotten.append(ident)
            for table in (self.counts, self.db_counts):
                if owner in table:
                    table[owner][kind] -= 1
        return owner

    async def _forced_merge(self, ids: list[Ident], merge: tuple[str, ...], event_id: str) -> str:
        """A rep confirmed in crm-core that the persons in ``merge`` are the one its crm_contact_id names: merge
        them into it now, whatever the conflict rule and the per-type limits say; returns the survivor.

        Persons are followed to whoever they were merged into since; one that is erased or unknown to the graph
        is left out (crm-core refuses those before asking), and with nobody left nothing changes. Written at once,
        under the persons' row locks, with the usual ``merge`` change (its ``event_id`` is the request) and the
        pair's conflicts marked resolved.
        """
        contact = next((i for i in ids if i[0] == CRM_CONTACT), None)
        if contact is None:
            return new_id()
        await self._flush()
        finals = await self._finals([contact[1], *merge])
        survivor = finals.get(contact[1])
        if survivor is None:
            log.warning("merge request for a person the graph does not hold", extra={"event_id": event_id})
            return contact[1]
        others = sorted({finals[m] for m in merge if m in finals} - {survivor})
        if not others:
            return survivor
        await self.conn.fetch(queries.LOCK_PERSONS, sorted([survivor, *others]))
        if await self._finals([survivor, *others]) != {p: p for p in (survivor, *others)}:
            raise RaceLost  # merged away or erased while we waited for the locks: retry the batch
        change = merge_change(survivor, others)
        change.event_id = event_id
        await self.conn.execute(
            queries.FORCED_MERGE, survivor, others, change.change_id, _when(change), event_id
        )
        self.result.changes.append(change)
        gone = set(others)
        for person in others:
            self.redirect[person] = survivor
        for person in [
            survivor,
            *others,
        ]:  # their counts changed: the batch's later events take the slow path
            self.counts.pop(person, None)
            self.db_counts.pop(person, None)
        for table in (self.known, self.result.learned):
            for ident, owner in table.items():
                if owner in gone:
                    table[ident] = survivor
        return survivor

    async def _finals(self, persons: list[str]) -> dict[str, str]:
        """Each of ``persons`` the graph holds and has not erased → the person it is now (merges followed)."""
        rows = await self.conn.fetch(queries.CONTACT_PERSONS, persons)
        return {person: final for person, final, erased in rows if not erased}

    def _unidentified(self, owners: list[str], ids: list[Ident]) -> str:
        """A bot's event: the owner of its strongest known identifier, else a person for its cookie alone."""
        if owners:
            return owners[0]
        cookie = [i for i in ids if i[0] == "anon_id"]
        return self._create(cookie) if cookie else new_id()

    def _create(self, ids: list[Ident], adopt: Ident | None = None) -> str:
        """A new person holding ``ids``, written with the rest of the batch's new persons.

        With ``adopt`` (a crm_contact_id nobody owns) the person takes the CRM's id, so crm-core's row is it.
        """
        person = adopt[1] if adopt is not None else new_id()
        self.new_persons.append(person)
        self.counts[person] = Counter()
        self._attach_new(person, ids)
        return person

    def _attach_new(self, person: str, ids: list[Ident]) -> None:
        counts = self.counts[person]
        for kind, value in ids:
            limit = self.rules.limit(kind)
            if limit is not None and counts[kind] >= limit:
                self.result.skipped[kind] += 1
                continue
            counts[kind] += 1
            self.new_ids.append((kind, value, person))
            if kind in LINK_TYPES and person not in self.new_persons:
                self.links.append((person, kind, value))
            self.known[(kind, value)] = person
            self.result.learned[(kind, value)] = person

    def _merge(self, owners: list[str], event_id: str) -> str:
        """Merge the event's persons into the owner of its strongest identifier, in memory; returns it."""
        survivor = owners[0]
        held = self.counts[survivor]
        merged: list[str] = []
        for other in owners[1:]:
            theirs = self.counts[other]
            clash = next((t for t in CONFLICTING_TYPES if held[t] and theirs[t]), None)
            if clash is not None:
                self.conflicts.append((survivor, other, clash, event_id))
                self.result.conflicts += 1
                continue
            held.update(theirs)
            merged.append(other)
        if merged:
            change = merge_change(survivor, merged)
            self.merges.append(change)
            self.result.changes.append(change)
            gone = set(merged)
            for person in merged:
                self.redirect[person] = survivor
                del self.counts[person]
            for table in (self.known, self.result.learned):
                for ident, owner in table.items():
                    if owner in gone:
                        table[ident] = survivor
        return survivor

    async def _flush(self) -> None:
        """Write what the batch changed: new persons and identifiers, merges, conflicts.

        Persons merged here, or given new identifiers, that already exist in PostgreSQL are locked first and their
        identifier counts compared with what was read; any difference means another replica changed them
        meanwhile, and the batch is retried. Rows are written in one sorted order, so replicas never deadlock.
        """
        # existing persons getting identifiers: their per-type limits were checked against the counts read
        gaining = {p for _, _, p in self.new_ids if p in self.db_counts}
        if self.merges or gaining:
            await self._check_unchanged(gaining)
        if self.new_ids:
            ids = sorted((t, v, self._final(p)) for t, v, p in self.new_ids)
            status = await self.conn.execute(
                queries.CREATE_PERSONS,
                [t for t, _, _ in ids],
                [v for _, v, _ in ids],
                [p for _, _, p in ids],
                self.new_persons,
            )
            if int(status.rsplit(" ", 1)[1]) != len(ids):
                raise RaceLost
        if self.merges:
            for change in self.merges:  # one merge per surviving person, as crm-core reads them
                change.person_id = self._final(change.person_id)
            await self.conn.executemany(
                queries.MERGE, [(c.person_id, c.merged, c.change_id, _when(c)) for c in self.merges]
            )
        conflicts: list[IdentityChange] = []
        if self.conflicts:
            rows = [(self._final(a), self._final(b), t, e) for a, b, t, e in self.conflicts]
            rows = [r for r in rows if r[0] != r[1]]
            if rows:
                await self.conn.executemany(queries.CONFLICT, [(*sorted(r[:2]), r[2], r[3]) for r in rows])
                conflicts = [conflict_change(*r) for r in rows]
        if conflicts:  # after the writes, so a retried batch announces nothing twice
            await record_conflict_changes(self.conn, conflicts)
            self.result.changes.extend(conflicts)
        if self.links:  # after the writes, so a retried batch announces nothing twice
            links = [link_change(self._final(person), kind, value) for person, kind, value in self.links]
            await record_identifier_changes(self.conn, links)
            self.result.changes.extend(links)
        self.new_ids, self.new_persons, self.merges, self.conflicts, self.links = [], [], [], [], []
        self.db_counts = {p: Counter(c) for p, c in self.counts.items()}  # what PostgreSQL now holds

    async def _check_unchanged(self, gaining: set[str]) -> None:
        """Lock the existing persons this batch merges or gives new identifiers; retry the batch if another replica
        changed them since they were read (their per-type limits were checked against what was read)."""
        new = set(self.new_persons)
        involved = sorted(({p for c in self.merges for p in (c.person_id, *c.merged)} | gaining) - new)
        if not involved:
            return
        await self.conn.fetch(queries.LOCK_PERSONS, involved)
        rows = await self.conn.fetch(queries.CHECK_PERSONS, involved)
        now: dict[str, Counter[str]] = {}
        for person, kind, n in rows:
            if kind is None:
                raise RaceLost  # merged away or erased meanwhile
            now.setdefault(person, Counter())[kind] = n
        for person in involved:
            if now.get(person, Counter()) != self.db_counts.get(person):
                raise RaceLost

    async def _slow(self, w: Work, ids: list[Ident]) -> str:
        """Attach to or merge persons already in the database: one event at a time, under row locks."""
        await self._flush()
        self.result.slow += 1
        guess = {i: self.known[i] for i in ids if i in self.known}
        person, merged, owner_of = await _resolve_locked(
            self.conn, ids, self.rules, w.event_id, self.result, guess
        )
        for stale in (person, *merged):  # their counts changed on the slow path
            self.counts.pop(stale, None)
            self.db_counts.pop(stale, None)
        if merged:
            gone = set(merged)
            for table in (self.known, self.result.learned):
                for ident, owner in table.items():
                    if owner in gone:
                        table[ident] = person
        self.known.update(owner_of)
        self.result.learned.update(owner_of)
        return person


async def _resolve_locked(
    conn: asyncpg.Connection,
    ids: list[Ident],
    rules: IdentifierRules,
    event_id: str,
    result: BatchResult,
    guess: dict[Ident, str] | None = None,
) -> tuple[str, list[str], dict[Ident, str]]:
    """The slow path for one event: its person, the persons merged into it, and who owns its identifiers.

    ``guess`` (the batch's view of the owners) saves a round trip; it is checked under the row locks.
    """
    merged_all: list[str] = []
    for _ in range(8):
        if guess:
            owner_of = guess
        else:
            owner_of, erased = await _owners(conn, ids)
            ids = [i for i in ids if i not in erased]  # a CRM person erased meanwhile
            if not ids:
                return new_id(), merged_all, {}
        guess = None
        contact = next((i for i in ids if i[0] == CRM_CONTACT and i not in owner_of), None)
        if contact is not None:
            if not await _adopt(conn, contact):
                continue  # another replica took the CRM's id meanwhile: read the owners again
            owner_of = {**owner_of, contact: contact[1]}
        owners = list(dict.fromkeys(owner_of[i] for i in ids if i in owner_of))
        if not owners:
            person = new_id()
            await conn.execute(queries.NEW_PERSON, person)
            if await conn.fetchval(queries.CLAIM, ids[0][0], ids[0][1], person) is None:
                await conn.execute(queries.DROP_PERSON, person)  # another replica claimed it first
                continue
            owner_of[ids[0]] = person
            owners = [person]
        await conn.fetch(queries.LOCK_PERSONS, owners)
        now_owned, counts = await _owners_and_counts(conn, ids, owners)
        if now_owned != owner_of:
            continue  # a concurrent merge moved identifiers while we waited for the locks
        survivor = owners[0]
        held = counts.get(survivor, Counter())
        merged: list[str] = []
        for other in owners[1:]:
            theirs = counts.get(other, Counter())
            clash = next((t for t in CONFLICTING_TYPES if held[t] and theirs[t]), None)
            if clash is not None:
                a, b = sorted((survivor, other))
                await conn.execute(queries.CONFLICT, a, b, clash, event_id)
                conflict = conflict_change(survivor, other, clash, event_id)
                await record_conflict_changes(conn, [conflict])
                result.changes.append(conflict)
                result.conflicts += 1
                continue
            held = held + theirs
            merged.append(other)
        if merged:
            change = merge_change(survivor, merged)
            await conn.execute(queries.MERGE, survivor, merged, change.change_id, _when(change))
            result.changes.append(change)
            merged_all.extend(merged)
        attached = await _attach(conn, survivor, [i for i in ids if i not in owner_of], held, rules, result)
        if attached is not None:
            links = [link_change(survivor, t, v) for t, v in attached if t in LINK_TYPES]
            await record_identifier_changes(conn, links)
            result.changes.extend(links)
            gone = set(merged)
            final = {i: survivor if p in gone else p for i, p in owner_of.items()}
            final.update(dict.fromkeys(attached, survivor))
            return survivor, merged_all, final
    raise RuntimeError("could not resolve an event's identity after repeated concurrent changes")


async def _attach(
    conn: asyncpg.Connection,
    person: str,
    new: list[Ident],
    held: Counter[str],
    rules: IdentifierRules,
    result: BatchResult,
) -> list[Ident] | None:
    """Attach new identifiers within the limits (one statement); None when another replica took one."""
    attach: list[Ident] = []
    for kind, value in new:
        limit = rules.limit(kind)
        if limit is not None and held[kind] >= limit:
            result.skipped[kind] += 1
            continue
        held[kind] += 1
        attach.append((kind, value))
    if attach:
        attach.sort()
        status = await conn.execute(
            queries.ATTACH, [t for t, _ in attach], [v for _, v in attach], [person] * len(attach)
        )
        if int(status.rsplit(" ", 1)[1]) != len(attach):
            return None
    return attach


async def _owners_and_counts(
    conn: asyncpg.Connection, ids: list[Ident], persons: list[str]
) -> tuple[dict[Ident, str], dict[str, Counter[str]]]:
    """Who owns the event's identifiers now, and how many of each type the persons hold: one round trip."""
    owners: dict[Ident, str] = {}
    counts: dict[str, Counter[str]] = {}
    rows = await conn.fetch(queries.OWNERS_AND_COUNTS, [t for t, _ in ids], [v for _, v in ids], persons)
    for kind, value, person, n in rows:
        if value is None:
            counts.setdefault(person, Counter())[kind] = n
        else:
            owners[(kind, value)] = person
    contacts = [i for i in ids if i[0] == CRM_CONTACT and i not in owners]
    if contacts:
        owners.update((await _contact_owners(conn, contacts))[0])
    return owners, counts


async def _owners(conn: asyncpg.Connection, ids: list[Ident]) -> tuple[dict[Ident, str], set[Ident]]:
    """Who owns the event's identifiers now, and which of its crm_contact_ids name an erased person."""
    rows = await conn.fetch(queries.OWNERS, [t for t, _ in ids], [v for _, v in ids])
    owners = {(r[0], r[1]): r[2] for r in rows}
    contacts = [i for i in ids if i[0] == CRM_CONTACT and i not in owners]
    if not contacts:
        return owners, set()
    implicit, erased = await _contact_owners(conn, contacts)
    return owners | implicit, erased


async def _contact_owners(
    conn: asyncpg.Connection, contacts: list[Ident]
) -> tuple[dict[Ident, str], set[Ident]]:
    """crm_contact_ids without a row in ``identifiers`` that name a person of the graph: owned by that person or
    its survivor; the erased ones apart (they count as tombstones)."""
    owners: dict[Ident, str] = {}
    erased: set[Ident] = set()
    for person, owner, gone in await conn.fetch(queries.CONTACT_PERSONS, [v for _, v in contacts]):
        if gone:
            erased.add((CRM_CONTACT, person))
        else:
            owners[(CRM_CONTACT, person)] = owner
    return owners, erased


async def _adopt(conn: asyncpg.Connection, contact: Ident) -> bool:
    """Create the CRM's person under its own id, holding its crm_contact_id (slow path); False when another
    replica created it first."""
    person = contact[1]
    if await conn.fetchval(queries.ADOPT_PERSON, person) is None:
        return False
    if await conn.fetchval(queries.CLAIM, contact[0], person, person) is None:
        await conn.execute(queries.DROP_PERSON, person)
        return False
    return True


async def _counts(conn: asyncpg.Connection, persons: list[str]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for person, kind, n in await conn.fetch(queries.COUNTS, persons):
        counts.setdefault(person, Counter())[kind] = n
    return counts


async def record_change(conn: asyncpg.Connection, change: IdentityChange) -> None:
    """Write a change to the outbox, in the same transaction as the graph change it describes."""
    await conn.execute(
        queries.RECORD_CHANGE, change.change_id, change.kind, change.person_id, change.merged, _when(change)
    )


async def record_identifier_changes(conn: asyncpg.Connection, changes: list[IdentityChange]) -> None:
    """Write link and unlink changes to the outbox, in the transaction that attached or let go their identifiers."""
    if changes:
        await conn.executemany(
            queries.RECORD_IDENTIFIER_CHANGE,
            [
                (c.change_id, c.kind, c.person_id, _when(c), orjson.dumps(c.identifier).decode())
                for c in changes
            ],
        )


async def record_conflict_changes(conn: asyncpg.Connection, changes: list[IdentityChange]) -> None:
    """Write conflict changes to the outbox, in the transaction that recorded their conflicts."""
    if changes:
        await conn.executemany(
            queries.RECORD_CONFLICT_CHANGE,
            [
                (c.change_id, c.person_id, c.other, _when(c), orjson.dumps(c.identifier).decode(), c.event_id)
                for c in changes
            ],
        )


def _when(change: IdentityChange) -> datetime:
    return datetime.fromisoformat(change.at.replace("Z", "+00:00"))


async def resolve(conn: asyncpg.Connection, graph: IdentityGraph, work: Work) -> str:
    """The person of one event (a batch of one; used by tools and tests)."""
    result = await graph.resolve_batch(conn, [work])
    return result.persons[0]


async def erase_person(conn: asyncpg.Connection, person_id: str) -> IdentityChange | None:
    """Erase a person (and every person merged into it); None when the graph never had it. Used by
    ``leadline erase`` (erase.py) and by crm-core's erase request (pipeline.py)."""
    survivor = await conn.fetchval(queries.SURVIVOR, person_id)
    if survivor is None:
        return None
    persons = [str(r[0]) for r in await conn.fetch(queries.PERSON_AND_MERGED, survivor)]
    rows = await conn.fetch(queries.ERASE_IDENTIFIERS, persons)
    erased = {(r[0], r[1]) for r in rows} | {(CRM_CONTACT, p) for p in persons}
    await conn.execute(queries.TOMBSTONE, [t for t, _ in erased], [digest(i) for i in erased])
    await conn.execute(queries.MARK_ERASED, persons)
    await conn.execute(queries.SCRUB_CHANGES, persons)
    change = IdentityChange(
        change_id=new_id(),
        kind="erase",
        person_id=survivor,
        at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        merged=[p for p in persons if p != survivor],
    )
    await record_change(conn, change)
    return change
