"""A Daraja double on loopback for the benchmarks: OAuth, STK Push and STK Query, counted.

Run as its own process (python -m tests.perf.daraja PORT_FILE) so that its work does not share
the load driver's interpreter. GET /_counts answers the requests counted per path, GET /_queries
when each push was queried; POST /_reset forgets both.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

OAUTH_PATH = "/oauth/v1/generate"
STK_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"

_numbers = itertools.count(1)
# Unique across runs on one database: a CheckoutRequestID is a unique column.
_RUN = uuid.uuid4().hex[:8]
_counts: dict[str, int] = {}
# When each push was asked about (STK Query), by CheckoutRequestID.
_queries: dict[str, list[float]] = {}
_counts_lock = threading.Lock()


def answer(path: str) -> dict:
    number = next(_numbers)
    if path == OAUTH_PATH:
        return {"access_token": f"bench-token-{number}", "expires_in": "3599"}
    if path == STK_PATH:
        return {
            "MerchantRequestID": f"bench-{number}",
            "CheckoutRequestID": f"ws_CO_bench_{_RUN}_{number}",
            "ResponseCode": "0",
            "ResponseDescription": "Success. Request accepted for processing",
            "CustomerMessage": "Success. Request accepted for processing",
        }
    if path == STK_QUERY_PATH:
        # Still being processed: a poll's query leaves the push pending.
        return {
            "requestId": f"bench-{number}",
            "errorCode": "500.001.1001",
            "errorMessage": "The transaction is being processed",
        }
    return {"ResponseCode": "0"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Daraja
    # Headers and body leave in separate writes: without this, Nagle and delayed ACKs add 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/_counts":
            with _counts_lock:
                self._send(200, dict(_counts))
            return
        if path == "/_queries":
            with _counts_lock:
                self._send(200, dict(_queries))
            return
        self._serve(path)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if path == STK_QUERY_PATH:
            checkout_request_id = json.loads(body).get("CheckoutRequestID", "")
            with _counts_lock:
                _queries.setdefault(checkout_request_id, []).append(time.time())
        if path == "/_reset":
            with _counts_lock:
                _counts.clear()
                _queries.clear()
            self._send(200, {})
            return
        self._serve(path)

    def _serve(self, path: str) -> None:
        with _counts_lock:
            _counts[path] = _counts.get(path, 0) + 1
        body = answer(path)
        self._send(500 if "errorCode" in body else 200, body)

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Path(sys.argv[1]).write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
