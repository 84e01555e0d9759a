"""stockflow: a Kafka-driven inventory stream processor with exactly-once stock in Postgres."""

__all__ = ["StockflowError", "__version__"]

__version__ = "0.1.0"


class StockflowError(Exception):
    """Base of every error stockflow raises on purpose."""
