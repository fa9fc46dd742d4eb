"""The workspace's home: what each role does first. A rep sees their open leads with the next step, their overdue
follow-ups and the newest form submissions; an admin sees everyone's overdue follow-ups; a marketer sees the
submissions and how many came this week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from leadline_crm.http.auth import REPS
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import signed_in
from leadline_crm.http.templating import render
from leadline_crm.people import queries
from leadline_crm.sales import tasks as sales_tasks

ROWS = 15


async def home(request: web.Request) -> web.Response:
    """GET /app."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    mine = []
    if caller.user_id is not None and caller.role in REPS:
        mine = await pool.fetch(queries.MY_WORK, caller.user_id, ROWS)
    overdue = []
    if caller.role == "admin":
        overdue = await pool.fetch(queries.OVERDUE, None, ROWS)
    elif caller.user_id is not None and caller.role in REPS:
        overdue = await pool.fetch(queries.OVERDUE, caller.user_id, ROWS)
    tasks = []  # overdue tasks (issue 15): the rep's own, everyone's for an admin
    if caller.role == "admin" or (caller.user_id is not None and caller.role in REPS):
        tasks = await sales_tasks.overdue(pool, None if caller.role == "admin" else caller.user_id, ROWS)
    forms = await pool.fetch(queries.RECENT_FORMS, ROWS)
    week = await pool.fetchval(queries.FORMS_SINCE, datetime.now(UTC) - timedelta(days=7))
    days = await pool.fetch(queries.FORMS_PER_DAY, datetime.now(UTC).date() - timedelta(days=13))
    chart = {
        "type": "bar",
        "labels": [d["day"].isoformat() for d in days],
        "series": [{"label": "form submissions", "values": [d["forms"] for d in days]}],
    }
    return render(
        request,
        "people/home.html",
        title=f"Good to see you, {caller.name}",
        mine=mine,
        overdue=overdue,
        forms=forms,
        forms_this_week=week,
        chart=chart,
        today=datetime.now(UTC).date(),
        tasks=tasks,
        now=datetime.now(UTC),
        is_rep=caller.role in REPS,
        notice=request.query.get("notice"),
    )
