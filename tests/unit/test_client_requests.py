"""What the management client sends, on the wire (its transport is Python's http.client): the
request a requests session would have sent (the same method, path, query, headers in the same
order, and body; only the User-Agent names the tool), kept-alive connections, compressed
answers, dropped connections replaced, and the proxy rules requests follows."""

from __future__ import annotations

import gzip
import itertools
import os
import socket
import sys
import threading
import zlib
from typing import Any

import pytest
import requests

from topology.broker import transport
from topology.broker.client import ManagementClient, _segment
from topology.errors import BrokerError

SEGMENTS = [
    ("overview",),
    ("queues", "/", "orders"),
    ("queues", "a vhost/with #odd%chars", "q?x=1&y"),
    ("exchanges", "é-vhost", "ünïcødé 名前 ~-._"),
    ("bindings", "v", "e", "q", "q", "~"),
    ("definitions", ""),
]

PARAMS = [
    None,
    {"columns": "name,messages,consumers"},
    {"if-empty": "true", "if-unused": "true"},
    {"disable_stats": "true", "enable_queue_totals": "true", "lengths_age": "60", "odd": "a b+c/é"},
]

BODIES = [
    None,
    {},
    {"durable": True, "arguments": {"x-queue-type": "quorum", "x-max-length": 10}},
    {"value": {"uri": "amqp://h", "ünï": "名前", "list": [1, 2.5, None, "\u0000"]}},
]


class Wire:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 that keeps each request as it came (request line,
    headers in order, body) and answers ``answer`` (a function of the request's number) to each:
    bytes to send, ``None`` to close without an answer, or a function that writes the answer to
    the connection itself (then closed); ``connections``: how many connections were made to it."""

    def __init__(self, answer: Any = None) -> None:
        self.answer = answer or (lambda number: b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                                b"content-length: 2\r\n\r\n{}")
        self.requests: list[tuple[str, list[tuple[str, str]], bytes]] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        pending = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in pending:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    pending += chunk
                head, _, pending = pending.partition(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                headers = [tuple(field.split(": ", 1)) for field in fields]
                length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
                while len(pending) < length:
                    pending += connection.recv(65536)
                body, pending = pending[:length], pending[length:]
                self.requests.append((line, headers, body))  # type: ignore[arg-type]
                reply = self.answer(len(self.requests))
                if reply is None:
                    return  # closed without an answer
                if callable(reply):
                    reply(connection)
                    return
                connection.sendall(reply)

    def drop_connections(self) -> None:
        """Close every connection made so far, from this end."""
        for connection in self._open:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.drop_connections()
        self.listener.close()


def session_request(url: str, user: str, password: str, method: str, path: str, params: Any, body: Any,
                    accept_any: bool, cookies: dict[str, str] | None = None) -> requests.PreparedRequest:
    with requests.Session() as session:
        session.headers.update({"content-type": "application/json", "accept": "application/json"})
        return session.prepare_request(requests.Request(
            method, url + path, params=params, json=body, auth=(user.encode(), password.encode()),
            headers={"accept": "*/*"} if accept_any else None, cookies=cookies))


@pytest.mark.parametrize("prefix", ["", "/prefix"])
def test_a_request_is_what_a_requests_session_would_have_sent(prefix):
    user, password = "user ü", "p:ss wörd"
    with Wire() as wire:
        client = ManagementClient(wire.url + prefix, user, password)
        for segments, params, body, method, accept_any in itertools.product(
                SEGMENTS, PARAMS, BODIES, ("GET", "PUT", "POST", "DELETE"), (False, True)):
            if method == "GET" and body is not None:
                continue
            client.request(method, *segments, params=params, body=body, accept_any=accept_any)
            line, headers, sent = wire.requests[-1]
            path = "/api/" + "/".join(_segment(s) for s in segments)
            theirs = session_request(wire.url + prefix, user, password, method, path, params, body, accept_any)
            assert line == f"{theirs.method} {theirs.path_url} HTTP/1.1"
            assert sent == (theirs.body or b"")
            assert headers[0] == ("Host", f"127.0.0.1:{wire.port}")
            assert [(name, value) for name, value in headers[1:] if name != "User-Agent"] == [
                (name, value) for name, value in theirs.headers.items() if name != "User-Agent"]  # in the same order
            assert dict(headers)["User-Agent"] == "topology"
        client.close()
        assert wire.connections == 1  # one kept-alive connection for all of them


def test_a_cookie_is_sent_as_a_session_would_send_it():
    answers = {1: b"HTTP/1.1 200 OK\r\nset-cookie: AWSALB=node-2; Path=/\r\ncontent-length: 2\r\n\r\n{}"}
    with Wire(lambda number: answers.get(number, b"HTTP/1.1 204 No Content\r\n\r\n")) as wire:
        client = ManagementClient(wire.url)
        client.request("GET", "overview")
        for method, body in (("GET", None), ("PUT", {"a": 1})):
            client.request(method, "overview", body=body)
            theirs = session_request(wire.url, "guest", "guest", method, "/api/overview", None, body, False,
                                     {"AWSALB": "node-2"})
            headers = wire.requests[-1][1]
            assert dict(headers)["Cookie"] == theirs.headers["Cookie"] == "AWSALB=node-2"
            assert [h for h in headers[1:] if h[0] != "User-Agent"] == [
                h for h in theirs.headers.items() if h[0] != "User-Agent"]
        client.close()


@pytest.mark.parametrize("expiry, left", [
    ("a=gone; Max-Age=0", "b=2"),
    ("b=old; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "a=1"),  # an expiry date that has passed
])
def test_a_cookie_the_broker_expires_is_not_sent_again(expiry, left):
    answers = {1: b"HTTP/1.1 204 No Content\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\n",
               2: f"HTTP/1.1 204 No Content\r\nset-cookie: {expiry}\r\n\r\n".encode()}
    with Wire(lambda number: answers.get(number, b"HTTP/1.1 204 No Content\r\n\r\n")) as wire:
        client = ManagementClient(wire.url)
        for _ in range(3):
            client.request("GET", "overview")
        client.close()
    assert [dict(headers).get("Cookie") for _, headers, _ in wire.requests] == [None, "a=1; b=2", left]


def test_requests_do_not_share_headers():
    """Each request has its own headers: one that accepts anything, or has a body, changes
    nothing for the next."""
    with Wire() as wire:
        client = ManagementClient(wire.url)
        client.request("PUT", "x", body={"a": 1}, accept_any=True)
        client.request("GET", "x")
        client.close()
    first, second = (dict(headers) for _, headers, _ in wire.requests)
    assert first["accept"] == "*/*" and first["Content-Length"] == "8"
    assert second["accept"] == "application/json" and "Content-Length" not in second


@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress), ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data)[2:-4]),  # a raw deflate stream, as some servers send
])
def test_a_compressed_answer_is_read(encoding, compress):
    body = compress(b'{"rabbitmq_version": "4.0.5"}')
    reply = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: {encoding}\r\n"
             f"content-length: {len(body)}\r\n\r\n").encode() + body
    with Wire(lambda number: reply) as wire:
        client = ManagementClient(wire.url)
        assert client.request("GET", "overview") == {"rabbitmq_version": "4.0.5"}
        client.close()
    assert dict(wire.requests[0][1])["Accept-Encoding"] == "gzip, deflate"


def test_an_answer_that_does_not_decompress_is_one_line():
    reply = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nnope"
    with Wire(lambda number: reply) as wire:
        with pytest.raises(BrokerError) as info:
            ManagementClient(wire.url).request("GET", "overview")
    assert str(info.value) == (f"the answer of {wire.url} to GET /api/overview could not be decompressed "
                               "(a proxy in between?)")


def test_a_connection_the_broker_closed_while_idle_is_replaced_before_it_is_used():
    """No request is lost to a kept-alive connection the broker closed meanwhile (its idle
    timeout): the next request sees it closed and connects again, without a failure to retry."""
    with Wire() as wire:
        client = ManagementClient(wire.url)
        client.request("GET", "overview")
        wire.drop_connections()
        for _ in range(20):  # once the close has come through
            if transport._dropped(client._transport._local.connection.sock):
                break
            threading.Event().wait(0.01)
        client.request("PUT", "vhosts", "v", body={})
        client.close()
    assert wire.connections == 2 and len(wire.requests) == 2  # the PUT sent once, on a new connection


def test_an_http_1_0_answer_closes_the_connection_and_the_next_request_opens_another():
    reply = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    with Wire(lambda number: reply) as wire:
        client = ManagementClient(wire.url)
        for _ in range(3):
            assert client.request("GET", "overview") == {}
        client.close()
    assert wire.connections == 3


def test_close_leaves_a_request_under_way_to_finish():
    """Closing the client (an error elsewhere) does not cut a read another thread has under way:
    its connection closes once its answer is read."""
    started, release = threading.Event(), threading.Event()

    def answer(number: int) -> bytes:
        started.set()
        release.wait(5)
        return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"

    with Wire(answer) as wire:
        client = ManagementClient(wire.url)
        results: list[Any] = []
        reader = threading.Thread(target=lambda: results.append(client.request("GET", "overview")))
        reader.start()
        started.wait(5)
        client.close()
        release.set()
        reader.join(5)
    assert results == [{}]
    [connection] = client._transport._connections
    assert connection.sock is None  # closed once its answer was read


def test_a_body_that_is_not_json_is_one_line_naming_the_request():
    with Wire() as wire:
        client = ManagementClient(wire.url)
        with pytest.raises(BrokerError) as info:
            client.request("PUT", "queues", "v", "q", body={"arguments": {"x-odd": float("nan")}})
        client.close()
    assert str(info.value) == f"request to {wire.url} failed (PUT /api/queues/v/q)"
    assert client.requests_made["PUT"] == 1 and wire.requests == []  # nothing sent


@pytest.mark.parametrize("url", ["http://127.0.0.1:15672", "https://rabbit.example:443/", "http://bücher.example:15672",
                                 "https://[::1]:15671/prefix", "HTTP://Rabbit.Example", "http://h:15672/räbbit mq/",
                                 "http://h:15672/a%2Fb/c~d!e"])
def test_a_request_to_a_proxy_names_the_url_as_requests_does(url):
    ours = transport.Transport(url, "u", "p")
    theirs = requests.Request("GET", url.rstrip("/") + "/api/overview").prepare()
    assert ours.origin + ours.prefix + "/api/overview" == theirs.url


NO_PROXY_CASES = [
    # (no_proxy, url, bypassed)
    ("", "http://broker:15672", False),
    ("broker", "http://broker:15672", True),
    ("example.com", "http://rabbit.example.com:15672", True),
    (".example.com", "http://rabbit.example.com:15672", True),
    ("other.com, example.com", "http://rabbit.example.com", True),
    ("broker:15672", "http://broker:15672", True),
    ("broker:15671", "http://broker:15672", False),
    ("10.0.0.0/8", "http://10.1.2.3:15672", True),
    ("10.0.0.0/8", "http://11.1.2.3:15672", False),
    ("10.0.0.0/0", "http://10.1.2.3:15672", False),
    ("10.1.2.3", "http://10.1.2.3:15672", True),
    ("*", "http://anything:15672", True),
    ("xample.com", "http://rabbit.example.com", False),  # a domain, not any end of the name
]


def proxy_environment(monkeypatch, **variables: str) -> None:
    """Only the proxy variables given (under the names given), none of the machine's own (any
    ``*_proxy`` in any case, as urllib reads them)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("no_proxy, url, bypassed", NO_PROXY_CASES)
def test_no_proxy_is_read_as_requests_reads_it(monkeypatch, no_proxy, url, bypassed):
    proxy_environment(monkeypatch, HTTP_PROXY="proxy.internal:3128", NO_PROXY=no_proxy)
    theirs = requests.Session().merge_environment_settings(url, {}, None, True, None)["proxies"]
    proxy = requests.utils.select_proxy(url, theirs)
    expected = None if proxy is None else requests.utils.prepend_scheme_if_needed(proxy, "http")
    assert transport.proxy_for(url) == expected
    assert (expected is None) == bypassed


@pytest.mark.parametrize("variables, url", [
    ({"HTTPS_PROXY": "http://secure:3128", "HTTP_PROXY": "http://plain:3128"}, "https://broker:15671"),
    ({"HTTPS_PROXY": "http://secure:3128", "HTTP_PROXY": "http://plain:3128"}, "http://broker:15672"),
    ({"ALL_PROXY": "http://every:3128"}, "https://broker:15671"),
    ({"ALL_PROXY": "http://every:3128", "https_proxy": "http://lower:3128"}, "https://broker:15671"),
    ({"Ftp_Proxy": "http://files:3128"}, "http://broker:15672"),
])
def test_the_proxy_for_a_scheme_is_chosen_as_requests_chooses_it(monkeypatch, variables, url):
    proxy_environment(monkeypatch, **variables)
    theirs = requests.Session().merge_environment_settings(url, {}, None, True, None)["proxies"]
    assert transport.proxy_for(url) == requests.utils.select_proxy(url, theirs)


@pytest.mark.parametrize("environment", [
    {}, {"PATH": "/bin", "HOME": "/root"}, {"http_proxy": "http://p:3128"}, {"HTTPS_PROXY": "http://p:3128"},
    {"Ftp_Proxy": "http://p:3128"}, {"_proxy": "http://p:3128"}, {"no_proxy": "broker"}, {"proxy": "http://p:3128"},
    {"XPROXY": "http://p:3128"}, {"my-proxy": "http://p:3128"}, {"PROXY_HOST": "p"}, {"http_proxy": ""},
    {"HTTP_PROXY": "http://p:3128", "REQUEST_METHOD": "GET"},
])
def test_where_no_variable_is_seen_to_name_a_proxy_urllib_finds_none_and_bypasses_none(monkeypatch, environment):
    """The shortcut of :func:`transport.proxy_for` may only be taken where urllib would say the same."""
    import urllib.request

    monkeypatch.setattr(urllib.request.os, "environ", environment)
    if not transport._names_a_proxy(environment):
        assert urllib.request.getproxies_environment() == {}
        assert not urllib.request.proxy_bypass_environment("broker")
    assert transport._names_a_proxy(environment) == any(name.lower().endswith("_proxy") for name in environment)


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="there urllib also reads the system's settings")
def test_without_a_proxy_variable_urllib_is_not_asked(monkeypatch):
    import urllib.request

    proxy_environment(monkeypatch)

    def asked(*arguments: Any) -> Any:
        raise AssertionError("urllib was asked")

    monkeypatch.setattr(urllib.request, "getproxies", asked)
    monkeypatch.setattr(urllib.request, "proxy_bypass", asked)
    assert transport.proxy_for("http://broker:15672") is None
    monkeypatch.setenv("ALL_PROXY", "http://every:3128")
    with pytest.raises(AssertionError, match="urllib was asked"):
        transport.proxy_for("http://broker:15672")


def test_a_proxys_credentials_go_with_each_request_to_it(monkeypatch):
    with Wire() as proxy:
        url = f"http://us%20er:p%40ss@127.0.0.1:{proxy.port}"
        proxy_environment(monkeypatch, HTTP_PROXY=url, http_proxy=url)
        client = ManagementClient("http://broker.internal:15672")
        client.request("GET", "overview")
        client.close()
    line, headers, _ = proxy.requests[0]
    assert line == "GET http://broker.internal:15672/api/overview HTTP/1.1"
    assert dict(headers)["Proxy-Authorization"] == requests.auth._basic_auth_str("us er", "p@ss")
    assert dict(headers)["Host"] == "broker.internal:15672"


def test_a_socks_proxy_is_one_line_saying_what_to_name(monkeypatch):
    proxy_environment(monkeypatch, HTTP_PROXY="socks5://127.0.0.1:1080", http_proxy="socks5://127.0.0.1:1080")
    with pytest.raises(BrokerError) as info:
        ManagementClient("http://broker.internal:15672").request("GET", "overview")
    assert str(info.value) == ("the proxy the environment names (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY) is not an "
                               "http:// or https:// proxy")


def test_a_path_prefix_with_any_characters_is_sent_percent_encoded():
    with Wire() as wire:
        client = ManagementClient(wire.url + "/räbbit mq")
        client.request("GET", "overview")
        client.close()
    assert wire.requests[0][0] == "GET /r%C3%A4bbit%20mq/api/overview HTTP/1.1"


@pytest.mark.parametrize("url, target, host", [
    ("https://bücher.example:15671", "xn--bcher-kva.example:15671", "xn--bcher-kva.example:15671"),
    ("https://[::1]:15671/p", "[::1]:15671", "[::1]:15671"),
    ("https://rabbit.example", "rabbit.example:443", "rabbit.example"),
])
def test_an_https_url_goes_through_the_proxys_tunnel_named_as_http_wants(monkeypatch, url, target, host):
    refused = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"
    with Wire(lambda number: refused) as proxy:
        through = f"http://u:p%3Ass@127.0.0.1:{proxy.port}"
        proxy_environment(monkeypatch, HTTPS_PROXY=through, https_proxy=through)
        client = ManagementClient(url)
        assert client._transport._headers["Host"] == host  # what the requests through the tunnel say
        with pytest.raises(BrokerError) as info:
            client.request("GET", "overview")
    assert str(info.value).startswith(f"cannot reach the management API at {url}")  # and "p:ss" nowhere
    assert "p:ss" not in str(info.value) and "u:p" not in str(info.value)
    line, headers, _ = proxy.requests[0]
    assert line == f"CONNECT {target} HTTP/1.1"
    assert dict(headers)["Proxy-Authorization"] == requests.auth._basic_auth_str("u", "p:ss")


@pytest.mark.parametrize("proxy", ["http://u:secret@proxy:abc", "http://u:secret@proxy:99999", "http://[::1"])
def test_a_proxy_url_that_is_not_one_is_one_line_without_it(monkeypatch, proxy):
    proxy_environment(monkeypatch, HTTP_PROXY=proxy, http_proxy=proxy)
    with pytest.raises(BrokerError) as info:
        ManagementClient("http://broker.internal:15672").request("GET", "overview")
    assert str(info.value) == ("the proxy URL the environment names (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY) is not a "
                               "valid URL")


def test_the_deadline_cuts_an_answer_that_ends_with_the_connection():
    """An answer without a length (it ends when the connection closes) is read from a socket
    http.client takes from the connection: the request's deadline still cuts it."""
    def drip(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n[")
        for _ in range(200):
            threading.Event().wait(0.1)
            try:
                connection.sendall(b"1,")
            except OSError:
                return

    with Wire(lambda number: drip) as wire:
        with pytest.raises(BrokerError) as info:
            ManagementClient(wire.url, timeout=0.5).request("GET", "overview")
    assert "did not answer GET /api/overview within 0.5s" in str(info.value)


def test_a_kept_alive_tls_connection_closed_as_a_request_goes_out_is_a_lost_connection():
    """Tried again like any lost connection, not reported as a failed TLS handshake."""
    import ssl

    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert transport._failure(eof, answered=False, reused=True).kind == "connection"
    assert transport._failure(eof, answered=False, reused=False).kind == "tls"
