"""Domain events are written once per cause: a replayed Kafka batch or API change inserts nothing new."""

from __future__ import annotations

import uuid

import asyncpg

from leadline_crm.automation import events


async def test_emit_writes_each_cause_once(crm_conn: asyncpg.Connection) -> None:
    """The same (type, source_key) emitted twice is one row; its data, person and chain are kept as given."""
    person = uuid.uuid4()
    batch = [
        events.NewEvent("score.changed", "ev-1", person, None, {"old": 10, "new": 55}, (3,)),
        events.NewEvent("form.submitted", "ev-1", person, "form-9", {"form_id": "form-9"}),
    ]
    await events.emit(crm_conn, batch)
    await events.emit(crm_conn, batch)
    rows = await crm_conn.fetch("SELECT * FROM domain_events ORDER BY id")
    got = [events.from_row(r) for r in rows]
    assert [(e.type, e.person_id, e.chain) for e in got] == [
        ("score.changed", person, (3,)),
        ("form.submitted", person, ()),
    ]
    assert got[0].data == {"old": 10, "new": 55}
    assert got[1].subject == "form-9"
