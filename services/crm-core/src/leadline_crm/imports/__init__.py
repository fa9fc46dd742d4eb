"""CSV import of people, companies and deals (issue 15): the API (routes.py), the pages (pages.py), reading and
checking the file (csvfile.py, kinds.py), the job row and the run (jobs.py), and the set-based load (load.py).

Its own domain because it writes into two: people (leads, through people/persons.py's identity event) and sales
(companies, deals, assignment); neither imports it, so there is no import circle.
"""

from aiohttp import web

from leadline_crm.http.openapi import Operation
from leadline_crm.imports import pages as _pages
from leadline_crm.imports import routes as _routes


def operations() -> list[Operation]:
    """The import API."""
    return _routes.operations()


def pages() -> list[web.AbstractRouteDef]:
    """The import pages."""
    return _pages.pages()


__all__ = ["operations", "pages"]
