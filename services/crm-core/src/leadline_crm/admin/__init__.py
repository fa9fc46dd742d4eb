"""The admin domain: users, API tokens, the audit log, custom fields, score rules and scoring settings."""

from leadline_crm.admin.pages import pages
from leadline_crm.admin.routes import operations

__all__ = ["operations", "pages"]
