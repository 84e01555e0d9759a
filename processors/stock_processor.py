"""The stock processor app: `python processors/stock_processor.py` (or `stockflow process`).

Reads its configuration from STOCKFLOW_* environment variables; see README.
"""

from stockflow.entrypoints.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["process"]))
