"""``leadline demo``: a realistic month of a small business, sent through the real collector and crm-core API."""
