"""A small HTTP proxy in front of the real management API that injects faults: it drops
connections, answers 503, or holds a request past the client's timeout, for the requests that
match a rule, a given number of times; everything else goes through to the broker."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tests.conftest import BROKER_URL


@dataclass
class Rule:
    how: str
    """``drop`` (close without an answer), ``503``, ``400`` (a refusal, as the broker words one), or
    ``delay`` (``seconds`` long, then pass)."""
    method: str | None = None
    path: str | None = None
    """Matched against the request's path as sent (percent-encoded), as a substring."""
    times: int = 1
    """How many matching requests get the fault (-1: all)."""
    seconds: float = 0.0


class FaultProxy:
    """``with FaultProxy() as proxy:`` ... ``proxy.url`` to point the tool at; ``proxy.add(Rule(...))``;
    ``proxy.seen`` lists (method, path, what happened) of every request, ``proxy.bodies`` (method,
    path, JSON body or ``None``) of every request that had one."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str, str]] = []
        self.bodies: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                rule = proxy._take(self.command, self.path)
                what = rule.how if rule is not None else "pass"
                with proxy.lock:
                    proxy.seen.append((self.command, self.path, what))
                    if body:
                        try:
                            proxy.bodies.append((self.command, self.path, json.loads(body)))
                        except ValueError:
                            proxy.bodies.append((self.command, self.path, None))
                if rule is not None and rule.how == "drop":
                    self.close_connection = True
                    return
                if rule is not None and rule.how in ("503", "400"):
                    payload = (b'{"error":"unavailable","reason":"injected by the test proxy"}' if rule.how == "503" else
                               b'{"error":"bad_request","reason":"inequivalent arg: refusal injected by the test proxy"}')
                    self.send_response(int(rule.how))
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if rule is not None and rule.how == "delay":
                    time.sleep(rule.seconds)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                answer = requests.request(self.command, BROKER_URL + self.path, data=body, headers=headers, timeout=120)
                self.send_response(answer.status_code)
                for key in ("content-type",):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, rule: Rule) -> None:
        with self.lock:
            self.rules.append(rule)

    def _take(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.times == 0 or (rule.method and rule.method != method) or (rule.path and rule.path not in path):
                    continue
                if rule.times > 0:
                    rule.times -= 1
                return rule
        return None

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
