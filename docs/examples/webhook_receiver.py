"""A webhook receiver for trying stockflow out, with nothing but Python's standard library.

    python3 docs/examples/webhook_receiver.py PORT [--exit-after N]

It listens on 127.0.0.1:PORT, checks each delivery's signature against the endpoint's
secret in the environment variable WEBHOOK_SECRET (`whsec_...`, printed once by
`stockflow webhooks add`), prints one line per verified delivery and answers 204; a
delivery whose signature does not verify gets 401 and is retried by the relay. With
--exit-after N it stops after N verified deliveries, which lets a script wait for them.
A real receiver also de-duplicates by webhook-id and works asynchronously: see
docs/webhooks.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE = 5 * 60  # seconds a delivery's timestamp may be away from this clock


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether `body`, the raw request body, is signed with `secret` (`whsec_...`)."""
    msg_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    if not (msg_id and signatures and re.fullmatch(r"[0-9]{1,12}", timestamp)):
        return False
    if abs(int(time.time()) - int(timestamp)) > TOLERANCE:
        return False  # an old delivery replayed, or a clock far off
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # during a secret rotation there is one signature per valid secret
    return any(hmac.compare_digest(sig[3:].encode(), expected)
               for sig in signatures.split(" ") if sig.startswith("v1,"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--exit-after", type=int, default=0, metavar="N")
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        sys.exit("set WEBHOOK_SECRET to the endpoint's secret (whsec_...)")
    received = 0

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal received
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if not verify_webhook(secret, headers, body):
                self.send_response(401)
                self.end_headers()
                return
            event = json.loads(body)
            print(f"webhook {event['type']} {event.get('subject', '')} "
                  f"id={headers['webhook-id']}", flush=True)
            self.send_response(204)
            self.end_headers()
            received += 1

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per delivery is printed above; no access log beside it

    server = HTTPServer(("127.0.0.1", args.port), Receiver)
    while not args.exit_after or received < args.exit_after:
        server.handle_request()
    server.server_close()


if __name__ == "__main__":
    main()
