"""HTTP/1.1 to the management API on Python's own :mod:`http.client` (the transport of
:class:`topology.broker.client.ManagementClient`).

It keeps what the client took from requests before, with the same settings read the same way:

- a keep-alive connection per thread, one found closed by the broker replaced before it is used;
- the proxy the environment names (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, unless
  ``NO_PROXY`` names the host; requests' rules, read once): a plain request goes to it whole, an
  ``https`` one through a ``CONNECT`` tunnel, with the proxy URL's credentials;
- the CA bundle: the one given, else ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else
  certifi's (the bundle requests verifies with); a client certificate and key;
- answers compressed with gzip or deflate, read whole;
- cookies the broker (or a load balancer before it) sets, sent back with the next requests;
- redirects never followed.

What it saves: requests and urllib3 took about 50 ms of CPU to import (a tenth of a no-op
``plan`` at 20,000 objects), and each request about 0.5 ms of CPU through them against 0.2 ms
here (``docs/benchmark.md``, "The tool's own HTTP transport").
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

USER_AGENT = "topology"
ACCEPT_ENCODING = "gzip, deflate"


class Failure(Exception):
    """A request that failed on its way: ``kind`` is ``connection`` (not reached, or the connection
    lost before an answer), ``broken`` (lost while the answer was read), ``timeout``, ``tls``,
    ``decoding`` (an answer that does not decompress), ``file`` (a CA bundle or client certificate
    that cannot be loaded) or ``unsupported`` (a proxy this transport cannot use, said in
    ``text``). The error behind it is its ``__cause__``."""

    def __init__(self, kind: str, text: str = ""):
        super().__init__(kind, text)
        self.kind = kind
        self.text = text


class Answer:
    """An answer, read whole (and decompressed)."""

    __slots__ = ("status", "reason", "headers", "content")

    def __init__(self, status: int, reason: str, headers: http.client.HTTPMessage, content: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        """Its headers (looked up by any case)."""
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The decoded JSON body; ``ValueError`` when it is not JSON."""
        return json.loads(self.text)


class Transport:
    """Requests to the origin of ``url`` (its path a prefix of every request's), from any thread."""

    def __init__(self, url: str, user: str, password: str, verify: bool | str = True,
                 cert: str | tuple[str, str] | None = None):
        parts = urlsplit(url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = quote(parts.path.rstrip("/"), safe=_PATH_SAFE)
        """The URL's path, percent-encoded as requests encodes it."""
        self.authority = _authority(self.host, parts.port)
        """The host (IDNA-encoded, an IPv6 address in brackets) and the port the URL gives."""
        self.origin = f"{'https' if self.https else 'http'}://{self.authority}"
        """The scheme and authority, as a request to a proxy names them."""
        self.verify: bool | str = verify
        if verify is True:
            self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.cert = cert
        self.proxy = proxy_for(url)
        """The proxy URL every request goes through, or ``None``."""
        self._proxy: tuple[str, str, int] | None = None
        """The proxy's scheme, host and port."""
        self._proxy_problem: str | None = None
        """Why the proxy cannot be used (said at the first request)."""
        self._proxy_headers: dict[str, str] = {}
        """The proxy's credentials: sent with each request to it, or with the tunnel's ``CONNECT``."""
        if self.proxy is not None:
            self._read_proxy(self.proxy)
        credentials = base64.b64encode(user.encode("utf-8") + b":" + password.encode("utf-8")).decode("ascii")
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, "accept": "application/json",
                         "Connection": "keep-alive", "content-type": "application/json"}
        if self._proxy is not None and self.https:
            # through a tunnel: the Host header names the broker, not the proxy the connection is to
            default = self.port == 443
            self._headers = {"Host": _authority(self.host, None if default else self.port), **self._headers}
        elif self._proxy is not None:
            self._headers.update(self._proxy_headers)  # the request itself goes to the proxy
        self._authorization = "Basic " + credentials
        self._context: Any = None
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._busy: set[int] = set()
        """The ``id`` of each connection a request is using (:meth:`close` leaves those to their request)."""
        self._closed = False
        self._lock = threading.Lock()
        self._cookies: dict[str, str] = {}

    def _read_proxy(self, proxy: str) -> None:
        """The proxy's address and credentials, or what is wrong with its URL (never the URL itself:
        it may hold a password)."""
        try:
            parts = urlsplit(proxy)
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError:
            self._proxy_problem = ("the proxy URL the environment names (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY) is not "
                                   "a valid URL")
            return
        if scheme not in ("http", "https") or not host:
            self._proxy_problem = ("the proxy the environment names (HTTP_PROXY, HTTPS_PROXY or ALL_PROXY) is not an "
                                   "http:// or https:// proxy")
            return
        if scheme == "https" and self.https:
            self._proxy_problem = ("the proxy the environment names (HTTPS_PROXY or ALL_PROXY) is an https:// one, "
                                   "which this tool cannot tunnel TLS through: name an http:// one")
            return
        self._proxy = (scheme, host, port or (443 if scheme == "https" else 80))
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("utf-8")
            self._proxy_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")

    # -- requests ------------------------------------------------------------------------------

    def send(self, method: str, target: str, body: bytes | None, timeout: float, accept_any: bool = False,
             serve: Callable[[Any], None] | None = None) -> Answer:
        """Send ``method`` to ``target`` (a path with its query, under the URL's prefix) and read
        the whole answer. ``serve(socket)`` is told the connection's socket once it is connected
        and before the request goes out (a deadline may shut it down). Raises :class:`Failure`."""
        if self._proxy_problem is not None:
            raise Failure("unsupported", self._proxy_problem)
        headers = dict(self._headers)
        if accept_any:
            headers["accept"] = "*/*"
        if self._cookies:
            with self._lock:
                headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self._cookies.items())
        if body is not None:
            headers["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD"):
            headers["Content-Length"] = "0"
        headers["Authorization"] = self._authorization
        path = self.prefix + target
        if self._proxy is not None and not self.https:
            path = self.origin + path  # a proxy is sent the whole URL
        connection, reused = self._connection(timeout)
        try:
            try:
                if connection.sock is None:
                    connection.connect()
                if serve is not None:
                    serve(connection.sock)  # the socket itself: an answer that closes the connection takes
                    # it from the connection, not from the deadline
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
            except (http.client.HTTPException, OSError) as error:
                raise _failure(error, answered=False, reused=reused) from error
            try:
                content = response.read()
            except (http.client.HTTPException, OSError) as error:
                raise _failure(error, answered=True, reused=False) from error
        except BaseException:
            connection.close()  # what it holds is unknown: the next request opens another
            raise
        finally:
            with self._lock:
                self._busy.discard(id(connection))
                closed = self._closed
            if closed:
                connection.close()  # closed meanwhile: once its answer is read
        answer = Answer(response.status, response.reason, response.headers, _decoded(content, response.headers))
        if response.headers.get("set-cookie") is not None:
            self._keep_cookies(response.headers.get_all("set-cookie") or [])
        return answer

    def close(self) -> None:
        """Close the idle connections; one a request is using closes once its answer is read."""
        with self._lock:
            self._closed = True
            idle = [connection for connection in self._connections if id(connection) not in self._busy]
        for connection in idle:
            connection.close()

    # -- connections ---------------------------------------------------------------------------

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, marked in use, with ``timeout`` for each wait on its socket,
        and whether it is connected already (kept alive from an earlier request)."""
        connection = getattr(self._local, "connection", None)
        made = connection is None
        if made:
            connection = self._local.connection = self._new_connection(timeout)
        with self._lock:
            if made:
                self._connections.append(connection)
            self._busy.add(id(connection))
        sock = connection.sock
        if sock is not None and _dropped(sock):
            connection.close()  # the broker closed it while it was idle: connect again
            sock = None
        connection.timeout = timeout
        if sock is not None:
            sock.settimeout(timeout)
        return connection, sock is not None

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._proxy is None:
            if self.https:
                return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._tls())
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        scheme, host, port = self._proxy
        if self.https:
            return _Tunnelled(host, port, timeout, self._tls(), f"{_authority(self.host, None)}:{self.port}",
                              self.host, self._proxy_headers)
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _tls(self) -> Any:
        """The TLS context of every connection (made once, when first needed)."""
        if self._context is None:
            verify = self.verify
            try:
                if verify is False:
                    context = unverified(verifying_context(None))
                else:
                    if verify is True:
                        import certifi

                        verify = certifi.where()
                    context = verifying_context(verify)
                if self.cert is not None:
                    cert, key = self.cert if isinstance(self.cert, tuple) else (self.cert, None)
                    present_certificate(context, cert, key)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                raise Failure("file") from error
            context.post_handshake_auth = True  # a broker may ask for the client certificate after the handshake
            self._context = context
        return self._context

    def _keep_cookies(self, values: list[str]) -> None:
        from email.utils import parsedate_to_datetime
        from http.cookies import CookieError, SimpleCookie

        for value in values:
            cookie = SimpleCookie()
            try:
                cookie.load(value)
            except CookieError:
                continue
            with self._lock:
                for name, morsel in cookie.items():
                    gone = morsel["max-age"].strip().lstrip("-").isdigit() and int(morsel["max-age"]) <= 0
                    if not gone and morsel["expires"] and not morsel["max-age"]:
                        try:
                            gone = parsedate_to_datetime(morsel["expires"]).timestamp() <= time.time()
                        except (TypeError, ValueError, OverflowError):
                            gone = False
                    if gone:
                        self._cookies.pop(name, None)
                    else:
                        self._cookies[name] = morsel.coded_value


class _Tunnelled(http.client.HTTPSConnection):
    """An HTTPS connection through an HTTP proxy's ``CONNECT`` tunnel, the broker named in it as
    HTTP wants (an IDNA host, an IPv6 address in brackets), which Python 3.11's own tunnel does not."""

    def __init__(self, proxy_host: str, proxy_port: int, timeout: float, context: Any, target: str,
                 server_hostname: str, proxy_headers: dict[str, str]):
        super().__init__(proxy_host, proxy_port, timeout=timeout, context=context)
        self._target = target
        self._server_hostname = server_hostname
        self._proxy_headers = proxy_headers

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout, self.source_address)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            lines = [f"CONNECT {self._target} HTTP/1.1", f"Host: {self._target}",
                     *(f"{name}: {value}" for name, value in self._proxy_headers.items())]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
            answer = http.client.HTTPResponse(sock, method="CONNECT")
            try:
                answer.begin()
                status, reason = answer.status, answer.reason
            finally:
                answer.close()
            if status != 200:
                raise OSError(f"the proxy refused the tunnel: {status} {reason}")
            self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)
        except BaseException:
            sock.close()
            raise


def _failure(error: BaseException, answered: bool, reused: bool) -> Failure:
    """The :class:`Failure` for ``error``: one on a connection kept alive that the broker closed
    as the request went out is a lost connection, also with TLS."""
    import ssl

    if isinstance(error, Failure):
        return error
    if reused and isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Failure("connection")
    if isinstance(error, ssl.SSLError) or isinstance(error.__context__, ssl.SSLError):
        return Failure("tls")
    if isinstance(error, (socket.timeout, TimeoutError)):
        return Failure("timeout")
    if answered:
        return Failure("broken")
    return Failure("connection")


_PATH_SAFE = "!$%&'()*+,/:;=@~"
"""What a path keeps as it is when percent-encoded (requests' rule: what a URL allows there)."""


def _authority(host: str, port: int | None) -> str:
    """``host`` (IDNA-encoded; an IPv6 address in brackets), with ``port`` when given."""
    name = host if host.isascii() else host.encode("idna").decode("ascii")
    name = f"[{name}]" if ":" in name else name
    return name if port is None else f"{name}:{port}"


def verifying_context(ca: str | None) -> Any:
    """A client TLS context that verifies the server against ``ca`` (a PEM file, or a folder of
    them; ``None``: the system's CAs). Raises ``OSError`` (``ssl.SSLError``) for a CA that cannot
    be loaded."""
    import ssl

    if ca and os.path.isdir(ca):
        return ssl.create_default_context(capath=ca)
    return ssl.create_default_context(cafile=ca)


def present_certificate(context: Any, cert: str, key: str | None) -> None:
    """Load the client certificate ``cert`` (and its ``key``, unless ``cert`` holds it) into
    ``context``, never asking for a key's passphrase on the terminal (the tool reads none)."""
    context.load_cert_chain(cert, key, password=lambda: b"")


def unverified(context: Any) -> Any:
    """``context``, no longer checking the server's certificate or name (``--insecure``, ``verify: false``)."""
    import ssl

    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _decoded(content: bytes, headers: http.client.HTTPMessage) -> bytes:
    """``content`` without the encodings its answer names (gzip, deflate)."""
    encoding = headers.get("content-encoding")
    if not encoding or not content:
        return content
    for name in reversed([part.strip().lower() for part in encoding.split(",")]):
        try:
            if name in ("gzip", "x-gzip"):
                content = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(content)
            elif name == "deflate":
                try:
                    content = zlib.decompress(content)
                except zlib.error:  # a raw deflate stream, without its zlib header
                    content = zlib.decompress(content, -zlib.MAX_WBITS)
        except zlib.error as error:
            raise Failure("decoding") from error
    return content


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle keep-alive connection's socket is readable: closed by the other end (or
    holding what no request asked for)."""
    import select

    if getattr(sock, "pending", None) is not None and sock.pending():  # type: ignore[attr-defined]
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])  # Windows
    except (OSError, ValueError):
        return True


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``None``: none, or ``NO_PROXY`` names its host),
    by requests' rules: ``no_proxy`` entries are host names or domains (``example.com`` and
    ``.example.com`` take ``rabbit.example.com``), either with a port, or for an IPv4 address,
    addresses and networks (CIDR); then Python's own ``proxy_bypass``; the proxy is
    the one named for the scheme and host, the scheme, ``all`` and the host, or ``all``; one
    without a scheme is an ``http://`` one."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return None
    if not _names_a_proxy(os.environ) and sys.platform not in _SYSTEM_PROXIES:
        return None  # what urllib would find (here it reads the environment alone), without importing it
    from urllib.request import getproxies, proxy_bypass

    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
    if no_proxy:
        entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
        if _is_ipv4(host):
            for entry in entries:
                if _is_cidr(entry):
                    network, _, bits = entry.partition("/")
                    mask = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
                    if _ipv4(host) & mask == _ipv4(network) & mask:
                        return None
                elif host == entry:
                    return None
        else:
            with_port = f"{host}:{parts.port}" if parts.port else host
            for entry in entries:
                entry = entry.lstrip(".")
                if host == entry or with_port == entry or host.endswith("." + entry) or with_port.endswith("." + entry):
                    return None
    try:
        if proxy_bypass(host):
            return None
    except (TypeError, OSError):
        pass
    proxies = getproxies()
    scheme = parts.scheme.lower()
    for key in (f"{scheme}://{host}", scheme, f"all://{host}", "all"):
        if proxies.get(key):
            proxy = proxies[key]
            return proxy if "://" in proxy else "http://" + proxy
    return None


_SYSTEM_PROXIES = ("darwin", "win32")
"""Where urllib also reads the system's proxy settings, not only the environment."""


def _names_a_proxy(environment: Mapping[str, str]) -> bool:
    """Whether a variable names a proxy as urllib reads them (``*_proxy`` in any case, ``no_proxy``
    among them): without one, it finds no proxy and bypasses none."""
    return any(len(name) > 5 and name[-6] == "_" and name[-5:].lower() == "proxy" for name in environment)


def _is_ipv4(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _is_cidr(entry: str) -> bool:
    """An IPv4 network with a mask of 1 to 32 bits (requests' rule: ``/0`` is no network)."""
    address, slash, mask = entry.partition("/")
    if not slash or not mask.isdigit() or not 1 <= int(mask) <= 32:
        return False
    return _is_ipv4(address)


def _ipv4(address: str) -> int:
    return int.from_bytes(socket.inet_aton(address), "big")
