"""What a rule does: each action in the loop's transaction, each change announced as a domain event whose chain
carries the rule's id (so the rule never runs on its own effects), with a source key made of the run's, so a
retried run announces nothing twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from leadline_crm import queries as shared_queries
from leadline_crm.automation import queries
from leadline_crm.automation.events import DomainEvent, NewEvent, emit
from leadline_crm.http import audit
from leadline_crm.http.auth import Caller

ACTION_TYPES = (
    "assign_owner",
    "create_task",
    "move_stage",
    "set_attribute",
    "add_tag",
    "add_to_list",
    "send_webhook",
    "notify",
)
#: How the audit log names changes made by workflow rules.
WORKFLOWS = Caller("workflow rules", "admin", via="cli")


class ActionFailed(Exception):
    """An action could not be done (no such user, list or team...): the run is marked failed with this reason."""


def describe(action: Mapping[str, Any]) -> str:
    """An action in words, for the test endpoint and the pages."""
    kind = action.get("type")
    detail = ", ".join(f"{k}={v}" for k, v in action.items() if k != "type")
    return f"{kind} ({detail})" if detail else str(kind)


async def perform(
    conn: asyncpg.Connection,
    rule_id: int,
    rule_name: str,
    actions: Sequence[Mapping[str, Any]],
    event: DomainEvent,
) -> list[str]:
    """Do ``actions`` for ``event``'s person; returns what was done, in words."""
    ctx = _Context(conn, rule_id, rule_name, event)
    done = []
    for n, action in enumerate(actions):
        try:
            await _ACTIONS[str(action["type"])](ctx, n, action)
        except (
            asyncpg.PostgresError,
            ValueError,
            KeyError,
        ) as exc:  # a bad id, a missing row: this run fails
            raise ActionFailed(f"{action['type']}: {type(exc).__name__}") from None
        done.append(describe(action))
    return done


class _Context:
    """One run's connection, rule and triggering event."""

    def __init__(self, conn: asyncpg.Connection, rule_id: int, rule_name: str, event: DomainEvent) -> None:
        self.conn, self.rule_id, self.rule_name, self.event = conn, rule_id, rule_name, event
        self.chain = (*event.chain, rule_id)

    def person(self) -> uuid.UUID:
        if self.event.person_id is None:
            raise ActionFailed("the event has no person")
        return self.event.person_id

    def key(self, n: int) -> str:
        return run_key(self.rule_id, self.event, n)


def run_key(rule_id: int, event: DomainEvent, n: int) -> str:
    """What names a run's ``n``-th action (stable across replays: a retried run announces nothing twice)."""
    return f"rule:{rule_id}:{event.type}:{event.source_key}:{n}"


def webhook_data(rule_id: int, rule_name: str, event: DomainEvent) -> dict[str, Any]:
    """What a "send webhook" action sends: the rule, the event's data and its person's id."""
    data: dict[str, Any] = {"rule_id": rule_id, "rule": rule_name, **dict(event.data)}
    if event.person_id is not None:
        data["person_id"] = str(event.person_id)
    return data


async def _assign_owner(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    from leadline_crm.sales import assignment  # here: sales' own writes announce through automation.events

    person = ctx.person()
    if action.get("user_id"):
        owner: uuid.UUID | None = uuid.UUID(str(action["user_id"]))
    elif action.get("team_id"):
        owner = await assignment.next_member(ctx.conn, uuid.UUID(str(action["team_id"])))
    else:  # round robin by the workspace's assignment rules (sales/assignment.py), for an unowned person
        given = await assignment.assign(ctx.conn, [person], WORKFLOWS)
        if person in given:
            await _assigned(ctx, n, person, given[person])
            return
        if await ctx.conn.fetchval(queries.PERSON_OWNER, person) is not None:
            return  # owned already: round robin leaves the owner alone
        owner = None
    if owner is None:
        raise ActionFailed("assign_owner: nobody to assign (no active member or matching assignment rule)")
    old = await ctx.conn.fetchval(queries.SET_OWNER, person, owner)
    await audit.record(ctx.conn, WORKFLOWS, "assign", "persons", person,
                       {"owner_id": [str(old) if old else None, str(owner)], "rule": ctx.rule_name})  # fmt: skip
    await _assigned(ctx, n, person, owner)


async def _assigned(ctx: _Context, n: int, person: uuid.UUID, owner: uuid.UUID) -> None:
    await emit(
        ctx.conn, [NewEvent("lead.assigned", ctx.key(n), person, None, {"owner_id": str(owner)}, ctx.chain)]
    )


async def _create_task(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    due = datetime.now(UTC) + timedelta(hours=float(action.get("due_in_hours", 24)))
    await ctx.conn.execute(queries.CREATE_TASK, str(action["title"])[:200], due, ctx.person())


async def _move_stage(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    person, stage = ctx.person(), str(action["stage"])
    current = await ctx.conn.fetchval(queries.PERSON_STAGE, person)
    if current is None:
        raise ActionFailed("move_stage: no such person")
    if current == stage:
        return
    reason = str(action.get("reason") or f"workflow rule {ctx.rule_name}")
    now = datetime.now(UTC)
    await ctx.conn.execute(shared_queries.MOVE_STAGES, [person], [current], [stage], [ctx.key(n)], [None], [reason],
                           now, [now])  # fmt: skip
    await emit(ctx.conn, [NewEvent("person.stage_changed", ctx.key(n), person, None,
                                   {"from": current, "to": stage}, ctx.chain)])  # fmt: skip


async def _set_attribute(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    await ctx.conn.execute(
        queries.SET_ATTRIBUTE, ctx.person(), str(action["key"]), _jsonb(action.get("value"))
    )


async def _add_tag(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    await ctx.conn.execute(queries.ADD_TAG, ctx.person(), str(action["tag"]))


async def _add_to_list(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    await ctx.conn.execute(queries.ADD_TO_LIST, int(action["list_id"]), ctx.person())


async def _send_webhook(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    """Queued for the named subscription by the outbound webhooks (once per run: the key is the run's)."""
    from leadline_crm.webhooks import fanout  # here: the webhooks package imports automation.events

    data = webhook_data(ctx.rule_id, ctx.rule_name, ctx.event)
    await fanout.enqueue(
        ctx.conn,
        int(action["subscription_id"]),
        ctx.event.type,
        data,
        key=ctx.key(n),
        person=ctx.event.person_id,
    )


async def _notify(ctx: _Context, n: int, action: Mapping[str, Any]) -> None:
    person = ctx.event.person_id
    link = f"/app/persons/{person}" if person else None
    await ctx.conn.execute(
        queries.NOTIFY_USER, uuid.UUID(str(action["user_id"])), str(action["text"])[:500], link
    )


def _jsonb(value: Any) -> str:
    return json.dumps(value)


_ACTIONS = {
    "assign_owner": _assign_owner,
    "create_task": _create_task,
    "move_stage": _move_stage,
    "set_attribute": _set_attribute,
    "add_tag": _add_tag,
    "add_to_list": _add_to_list,
    "send_webhook": _send_webhook,
    "notify": _notify,
}
