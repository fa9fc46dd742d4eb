"""The catalog domain: products, campaigns, affiliates, ads, forms, write keys, email sends and signed links."""

from leadline_crm.catalog.routes import config_entries, operations

__all__ = ["config_entries", "operations"]
