"""Typed keys of the app (its resources) and of the request (what the guard found out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm.http.auth import Caller

POOL = web.AppKey("crm_pool", asyncpg.Pool)
ROLE = web.RequestKey("role", str)
CALLER = web.RequestKey("caller", Caller)
BODY = web.RequestKey("body", dict[str, Any])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
