"""The simple actions of many runs at once: one statement per action type for a whole batch of runs.

Tagging, setting an attribute, adding to a list, creating a task, notifying a user and queueing a webhook need
nothing from each other, so a batch's runs made only of these are carried out set-based (one statement per action
type for the whole batch, instead of a few per run): this is what lets the loop keep up with ingestion. Runs with an
action that reads what it changes (assigning an owner by round robin, moving a stage) are carried out one by one
(rules._carry_out). Should a batched statement fail (a list or user that is gone), the batch is rolled back to
its savepoint and its runs are carried out one by one, so only the runs at fault fail (rules.evaluate).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from leadline_crm.automation import actions as acts
from leadline_crm.automation import queries
from leadline_crm.automation.events import DomainEvent

BATCHABLE = frozenset({"add_tag", "set_attribute", "add_to_list", "create_task", "notify", "send_webhook"})
Run = tuple[int, str, Sequence[Mapping[str, Any]], DomainEvent]
"""A run to carry out: its rule's id, name and actions, and the triggering event."""


def batchable(actions: Sequence[Mapping[str, Any]], event: DomainEvent) -> bool:
    """Whether a run of these actions for this event can join a batch."""
    return event.person_id is not None and all(a.get("type") in BATCHABLE for a in actions)


class _Columns:
    """The statements' parameter arrays, filled run by run."""

    def __init__(self) -> None:
        self.tags: tuple[list[Any], list[Any]] = ([], [])
        self.attrs: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self.lists: tuple[list[Any], list[Any]] = ([], [])
        self.tasks: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self.notices: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self.webhooks: list[tuple[int, str, Mapping[str, Any], str, Any]] = []

    def add(self, run: Run, n: int, now: datetime) -> None:
        rule_id, rule_name, actions, event = run
        action = actions[n]
        person, kind = event.person_id, action["type"]
        if kind == "send_webhook":  # queued as actions.py's _send_webhook queues it, with the same key
            data = acts.webhook_data(rule_id, rule_name, event)
            key = acts.run_key(rule_id, event, n)
            self.webhooks.append((int(action["subscription_id"]), event.type, data, key, person))
        elif kind == "add_tag":
            _push(self.tags, person, str(action["tag"]))
        elif kind == "set_attribute":
            _push(self.attrs, person, str(action["key"]), json.dumps(action.get("value")))
        elif kind == "add_to_list":
            _push(self.lists, int(action["list_id"]), person)
        elif kind == "create_task":
            due = now + timedelta(hours=float(action.get("due_in_hours", 24)))
            _push(self.tasks, str(action["title"])[:200], due, person)
        else:  # notify
            _push(self.notices, str(action["user_id"]), str(action["text"])[:500], f"/app/persons/{person}")


def _push(columns: tuple[list[Any], ...], *values: Any) -> None:
    for column, value in zip(columns, values, strict=True):
        column.append(value)


async def act(conn: asyncpg.Connection, runs: Sequence[Run]) -> None:
    """Do the runs' actions set-based (one statement per action type for the whole batch), in the caller's
    savepoint."""
    from leadline_crm.webhooks import fanout  # here: the webhooks package imports automation.events

    cols, now = _Columns(), datetime.now(UTC)
    for run in runs:
        for n in range(len(run[2])):
            cols.add(run, n, now)
    for sql, columns in (
        (queries.ADD_TAGS, cols.tags),
        (queries.SET_ATTRIBUTES, cols.attrs),
        (queries.ADD_TO_LISTS, cols.lists),
        (queries.CREATE_TASKS, cols.tasks),
        (queries.NOTIFY_USERS, cols.notices),
    ):
        if columns[0]:
            await conn.execute(sql, *columns)
    await fanout.enqueue_many(conn, cols.webhooks)
