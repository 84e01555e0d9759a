"""Kafka and Postgres clients, outbox framing, metrics, health and logs: the I/O edges."""
