"""The catalog domain: products, campaigns, affiliates, ads, forms, write keys, email sends and signed links, and
the settings pages under /app/settings."""

from leadline_crm.catalog.pages import pages
from leadline_crm.catalog.routes import config_entries, operations

__all__ = ["config_entries", "operations", "pages"]
