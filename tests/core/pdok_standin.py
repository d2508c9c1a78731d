"""A loopback stand-in for PDOK's Locatieserver (``/bzk/locatieserver/search/v3_1/free``),
answering in its documented JSON shape (``response.numFound``, ``response.docs[]`` with
``straatnaam``, ``woonplaatsnaam``, ``huisnummer``, ``huisletter``, ``huisnummertoevoeging``,
``postcode``...) for the addresses it knows, and able to be slow, broken or gone.

    standin = PdokStandIn().start()
    standin.url        # what ADDRESS_LOOKUP_URL points at
    standin.mode = "slow" | "broken" | "empty" | "up"
    standin.stop()     # and the port refuses connections
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/bzk/locatieserver/search/v3_1/free"

# (postcode, huisnummer, huisletter, huisnummertoevoeging, straatnaam, woonplaatsnaam)
ADDRESSES = [
    ("3531CJ", 12, "", "", "Kanaalstraat", "Utrecht"),
    ("3531CJ", 12, "A", "", "Kanaalstraat", "Utrecht"),
    ("3531CJ", 12, "", "2", "Kanaalstraat", "Utrecht"),
    ("3524BA", 7, "", "", "Hondsrug", "Utrecht"),
    ("3521AB", 12, "", "", "Croeselaan", "Utrecht"),
    ("3521AB", 12, "A", "", "Croeselaan", "Utrecht"),
    ("3524BA", 10, "", "", "Hondsrug", "Utrecht"),
    ("3524BA", 100, "", "", "Hondsrug", "Utrecht"),
    ("3521AB", 1, "", "", "’t Goylaan", "Utrecht"),
]


def document(postcode: str, number: int, letter: str, addition: str, street: str, city: str) -> Any:
    """One address as the Locatieserver's free endpoint answers it (with fl=*)."""
    house = f"{number}{letter}{'-' + addition if addition else ''}"
    return {
        "type": "adres",
        "weergavenaam": f"{street} {house}, {postcode} {city}",
        "id": f"adr-{postcode}-{house}",
        "identificatie": f"0344010000{number:06d}-0344200000{number:06d}",
        "straatnaam": street,
        "huisnummer": number,
        "huisletter": letter or None,
        "huisnummertoevoeging": addition or None,
        "huis_nlt": f"{number}{letter}{addition}",
        "postcode": postcode,
        "woonplaatsnaam": city,
        "gemeentenaam": city,
        "provincienaam": "Utrecht",
        "centroide_ll": "POINT(5.1 52.09)",
        "score": 13.2,
    }


class PdokStandIn:
    def __init__(self) -> None:
        self.mode = "up"
        self.slow_seconds = 3.0
        self.requests: list[dict[str, list[str]]] = []
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def start(self) -> PdokStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                standin.requests.append(query)
                if parts.path != PATH:
                    self._send(404, b'{"message": "not found"}')
                    return
                if standin.mode == "slow":
                    time.sleep(standin.slow_seconds)
                if standin.mode == "broken":
                    self._send(200, b"<html>maintenance</html>", "text/html")
                    return
                docs = [] if standin.mode == "empty" else standin.answer(query)
                body = {
                    "response": {
                        "numFound": len(docs),
                        "start": 0,
                        "maxScore": 13.2 if docs else 0.0,
                        "numFoundExact": True,
                        "docs": docs,
                    }
                }
                self._send(200, json.dumps(body).encode())

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", f"{kind}; charset=UTF-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow mode)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Gone: the port refuses connections (nothing listens on it any more)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @staticmethod
    def answer(query: dict[str, list[str]]) -> list[Any]:
        """The documents for ``fq=postcode:... AND huisnummer:...`` (one fq or several)."""
        filters = " AND ".join(query.get("fq", []))
        postcode = re.search(r"postcode:\"?([0-9]{4}[A-Z]{2})", filters)
        number = re.search(r"huisnummer:\"?([0-9]+)", filters)
        if not postcode or not number or "type:adres" not in filters:
            return []
        return [
            document(*address)
            for address in ADDRESSES
            if address[0] == postcode.group(1) and address[1] == int(number.group(1))
        ]
