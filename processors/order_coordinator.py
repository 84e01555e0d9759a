"""The order coordinator app: `python processors/order_coordinator.py` (or `stockflow
coordinate`). It runs beside the stock processor: whole orders in, per-key reservations
out, one answer per order (see README, Orders).

Reads its configuration from STOCKFLOW_* environment variables; see README.
"""

from stockflow.entrypoints.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["coordinate"]))
