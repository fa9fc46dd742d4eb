"""The admin domain: users, custom fields, score rules and scoring settings."""

from leadline_crm.admin.routes import operations

__all__ = ["operations"]
