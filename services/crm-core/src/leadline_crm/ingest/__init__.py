"""Ingestion: the consumer loop (consumer.py), what it writes (touches.py), identity changes (identity.py)."""
