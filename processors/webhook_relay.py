"""The webhook relay app: `python processors/webhook_relay.py` (or `stockflow relay`).

Reads its configuration from STOCKFLOW_* environment variables; see README (Webhooks).
"""

from stockflow.entrypoints.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["relay"]))
