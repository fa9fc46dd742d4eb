"""The people domain: persons, leads, activities, purchases, feedback, the timeline, and their pages."""

from leadline_crm.people.pages import pages
from leadline_crm.people.routes import operations

__all__ = ["operations", "pages"]
