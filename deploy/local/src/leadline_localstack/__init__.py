"""Leadline local stack: a real single-node Kafka (KRaft) and PostgreSQL for `make up` and the tests, no Docker."""

from leadline_localstack.kafka import ensure_kafka_jars, kafka_running, start_kafka, stop_kafka
from leadline_localstack.postgres import postgres_running, start_postgres, stop_postgres
from leadline_localstack.procs import default_run_dir, free_port, repo_root

__all__ = [
    "default_run_dir",
    "ensure_kafka_jars",
    "free_port",
    "kafka_running",
    "postgres_running",
    "repo_root",
    "start_kafka",
    "start_postgres",
    "stop_kafka",
    "stop_postgres",
]
