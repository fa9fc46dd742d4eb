"""Ingestion: the consumer loop (consumer.py), what it writes (touches.py), the event and person types the
writer and the steps it calls share (touch.py), identity changes (identity.py)."""
