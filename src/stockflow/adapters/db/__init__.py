"""Postgres: migrations and the batch store."""
