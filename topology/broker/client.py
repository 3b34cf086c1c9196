"""The management HTTP client: the only code in the tool that speaks HTTP.

Keep-alive connections (one per thread: updates and deletions may go through a small pool of
threads; :mod:`topology.broker.transport`), a deadline on every request, and every path
segment percent-encoded (names may hold ``/``, ``%``, ``#``, spaces or any unicode).
Connection failures, refused credentials and 5xx answers become one-line
:class:`~topology.errors.BrokerError` messages that never contain the password.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any
import json
import os
import queue
import time
import re
import ssl
import threading
from urllib.parse import quote, urlencode, urlsplit

from topology.broker import lists, shapes
from topology.broker.transport import Answer, Failure, Transport, present_certificate, verifying_context
from topology.broker.shapes import shape_problem
from topology.errors import BrokerError
from topology.rules.versions import has_slow_export, parse_version

DEFAULT_URL = "http://127.0.0.1:15672"
DEFAULT_TIMEOUT = 30.0

ATTEMPTS = 3
"""Tries of one request that failed on the way (see ``ManagementClient._send``)."""

BACKOFF = (0.5, 1.5)
"""Seconds waited before the second and the third try."""

RETRY_STATUSES = frozenset({502, 503, 504})
"""Answers that say the request did not get through (a proxy, a node starting): tried again."""

READERS = 4
"""Threads (and connections) that read ahead at most; as many again read the bindings and the short
lists of vhosts read from their lists (see ``ManagementClient._read_lists``)."""

IMPORT_TIMEOUT = 120.0
"""Seconds a definitions import may take at least (the broker answers only once every object is made)."""


class RequestRefused(BrokerError):
    """The broker answered a request with a 4xx status; ``reason`` is its own explanation. Callers
    that expect one catch it; one that reaches the command line is one error line like any other,
    saying which request (``method`` and ``path``) the broker at ``url`` refused."""

    def __init__(self, status: int, reason: str, method: str = "", path: str = "", url: str = ""):
        request = f" {method} {path}" if method else ""
        where = f"the broker at {url} refused{request}" if url else f"the broker refused{request}"
        super().__init__(f"{where}: {reason} (HTTP {status})" if reason else f"{where} (HTTP {status})")
        self.status = status
        self.reason = reason
        self.method = method
        self.path = path


class BrokerFailed(BrokerError):
    """The broker failed on a request in a way it will again: a 5xx status other than 502/503/504, or
    an answer that is not JSON (``status`` 200: seen cut short in the middle by 4.3.6)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def ignore_missing(action: Callable[[], None]) -> None:
    """Run a deletion; an object already gone (404) is what was wanted."""
    try:
        action()
    except RequestRefused as refused:
        if refused.status != 404:
            raise


def redact_url(url: str) -> str:
    """``url`` with anything that could be a user or password masked: every run of
    characters before an ``@``, back to the previous ``/``. Safe on URLs that do not parse."""
    return _USERINFO.sub("***@", url)


_USERINFO = re.compile(r"[^/@]*@")


_OVERVIEW = {"columns": "rabbitmq_version,cluster_name,exchange_types", "disable_stats": "true"}
"""The overview's version, name and exchange types, without its statistics: those cost the broker a
walk over every object (tens of ms at 10,000 queues), and a plan waits for the version."""
_VHOSTS = {"columns": "name,description,tags,default_queue_type,metadata,tracing"}


def _segment(value: str) -> str:
    return quote(value, safe="")


class ManagementClient:
    """A client for the RabbitMQ management HTTP API at ``url``."""

    def __init__(self, url: str = DEFAULT_URL, user: str = "guest", password: str = "guest", timeout: float = DEFAULT_TIMEOUT,
                 *, verify: bool | str = True, cert: str | tuple[str, str] | None = None):
        """``verify``: check the broker's TLS certificate (``True``), against a CA bundle (a path), or not
        (``False``); ``cert``: a client certificate (a PEM path, or a (certificate, key) pair)."""
        try:
            parts = urlsplit(url)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # raises on a bad port
        except ValueError:
            valid = False
        if not valid:
            raise BrokerError(f"invalid management URL {redact_url(url)!r}: expected http(s)://host:port")
        odd = next((c for c in parts.hostname or "" if not (c.isalnum() or c in ".-_:%~")), None)
        if odd is not None:
            what = "a space" if odd.isspace() else repr(odd)
            raise BrokerError(f"invalid management URL {redact_url(url)!r}: the host name holds {what}")
        try:
            (parts.hostname or "").encode("idna")  # what connecting does: an empty label, one over 63 characters
        except UnicodeError:
            raise BrokerError(f"invalid management URL {redact_url(url)!r}: {parts.hostname!r} is not a host name "
                              "(an empty part between dots, or a part over 63 characters)") from None
        if parts.query or parts.fragment or url.rstrip("/").endswith(("?", "#")):
            raise BrokerError(f"invalid management URL {redact_url(url)!r}: it must not hold a query ('?') or a "
                              "fragment ('#'): give the scheme, host, port and any path prefix")
        if "@" in parts.netloc:
            raise BrokerError(
                "the management URL must not hold credentials: use --user and --password "
                "(or TOPOLOGY_USER and TOPOLOGY_PASSWORD)"
            )
        self.url = url.rstrip("/")
        self.user = user
        self.password = password
        self.timeout = timeout
        self._counting = threading.Lock()
        self._prefetched: dict[tuple[Any, ...], _Prefetch] = {}
        self._ungated: set[tuple[Any, ...]] = set()
        self._reads: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._readers = 0
        self._starting = threading.Lock()
        self._held: list[Callable[[], None]] = []
        """Gated reads waiting for :attr:`gate` to open: kept off the reading threads meanwhile, so
        that a read the gate does not hold (a vhost whose lock is held already) never waits behind them;
        while it holds any, one thread waits for the gate (:meth:`_release_held`)."""
        self._closed = False
        self.gate: threading.Event | None = None
        """When set (an apply that waits for its lock), prefetches wait until it opens."""
        self.cancelled = False
        """Set when prefetched answers will not be used: those still waiting are not sent."""
        self.verify = verify
        """As given (``True``: the environment's CA bundle, if it names one, else certifi's; see
        :class:`~topology.broker.transport.Transport`)."""
        self.cert = cert
        self._transport = Transport(self.url, user, password, verify, cert)
        """The connections, with the proxy and CA bundle the environment names, read once."""
        self.requests_made: Counter[str] = Counter()
        """Requests made so far, by HTTP method (by every thread)."""
        self._version: tuple[int, ...] | None = None
        """The broker's version, once read (see ``_broker_version``)."""
        self._version_text = ""
        """That version as the overview writes it (``""``: not read, or not said)."""
        self._listing: Any = None
        """The threads that read the bindings of vhosts read from their lists (made when first needed)."""
        self._parameters: _Prefetch | None = None
        """Every vhost's parameters, read once for all the vhosts read from their lists until the next
        write or :meth:`drop_read_ahead` (the broker lists them only all at once)."""
        self._lists_lock = threading.Lock()
        """Guards the making of :attr:`_listing` and :attr:`_parameters`."""
        self._statistics: dict[str, tuple[float, float, dict[str, dict[str, Any]]]] = {}
        """Per vhost, the last :meth:`queue_statistics`: when it was asked for, how long it took, what it said."""

    def close(self) -> None:
        with self._starting:
            self._closed = True  # reads held for a gate that opens later are not sent
            readers, self._readers = self._readers, 0
        for _ in range(readers):
            self._reads.put(None)
        if self._listing is not None:
            self._listing.shutdown(wait=False)
        self._transport.close()

    # -- transport ---------------------------------------------------------

    def prefetch(self, *segments: str, params: dict[str, str] | None = None, gated: bool = True,
                 read: Callable[[], Any] | None = None) -> None:
        """Start ``GET /api/<segments…>`` in the background (after :attr:`gate` opens, if any and
        ``gated``): the next :meth:`request` of exactly that read takes its answer (or its error)
        instead of asking again. Used to read the broker while the files are loaded. An ungated read
        (a vhost whose lock is already held) is forgotten by :meth:`drop_ungated_reads`. ``read``:
        what answers it, when not that one request (see :meth:`definitions`)."""
        key = _read_key(segments, params)
        if key in self._prefetched or self.cancelled:  # cancelled: nothing more is read ahead
            return
        slot = self._prefetched[key] = _Prefetch()
        if not gated:
            self._ungated.add(key)

        def fetch() -> None:
            slot.started = True
            try:
                if self.cancelled or self._closed:
                    slot.error = BrokerError("the read was cancelled")
                elif read is not None:
                    slot.result = read()
                else:
                    slot.result = self._send("GET", segments, params, None, False, None)
            except BaseException as error:  # handed to the reader, raised there
                slot.error = error
            finally:
                slot.done.set()

        gate = self.gate if gated else None
        if gate is not None and not gate.is_set():
            with self._starting:
                waiter = not self._held  # the first read held: nothing waits for the gate yet
                self._held.append(fetch)
            if waiter:  # one thread waits for the gate, whatever the number of reads held
                threading.Thread(target=self._release_held, args=(gate,), name="topology-gate", daemon=True).start()
            return
        self._queue_read(fetch)

    def _queue_read(self, fetch: Callable[[], None]) -> None:
        with self._starting:
            closed = self._closed
            if not closed:
                self._reads.put(fetch)
                start = self._readers < READERS  # a few threads, whatever the number of vhosts
                if start:
                    self._readers += 1
        if closed:
            fetch()  # answered as cancelled, here: no reading thread is started after close
            return
        if start:
            threading.Thread(target=self._reader, name="topology-prefetch", daemon=True).start()

    def _release_held(self, gate: threading.Event) -> None:
        """Once ``gate`` opens, hand the reads held for it to the reading threads (in order)."""
        gate.wait()
        with self._starting:
            held, self._held = self._held, []
        for fetch in held:
            self._queue_read(fetch)

    def _reader(self) -> None:
        while True:
            task = self._reads.get()
            if task is None:
                return  # the client was closed
            task()

    def drop_read_ahead(self) -> None:
        """Forget the prefetched answers not taken (a vhost that did not exist yet...): every later
        read asks the broker again."""
        self._prefetched.clear()
        self._ungated.clear()
        self._parameters = None

    def drop_ungated_reads(self) -> None:
        """Forget the reads started before :attr:`gate` opened (see :meth:`prefetch`): an apply that
        gave up the locks they were read under reads those again."""
        for key in list(self._ungated):  # a copy: an early lock's thread may add one meanwhile
            self._prefetched.pop(key, None)
        self._ungated.clear()

    def request(self, method: str, *segments: str, params: dict[str, str] | None = None, body: Any = None,
                accept_any: bool = False, timeout: float | None = None, read: Callable[[], Any] | None = None) -> Any:
        """Send one request to ``/api/<segments…>``; return the decoded JSON body (``None`` when empty).

        Raises :class:`RequestRefused` for a 4xx answer (other than 401) and
        :class:`BrokerError` when the broker cannot be reached, refuses the credentials
        or fails (5xx). ``read``: what answers a GET not read ahead, when not that one request.
        """
        if method == "GET" and self._prefetched:
            slot = self._prefetched.pop(_read_key(segments, params), None)
            if slot is not None:
                slot.done.wait()
                if slot.error is not None:
                    raise slot.error
                return slot.result
        if read is not None:
            return read()
        return self._send(method, segments, params, body, accept_any, timeout)

    def _send(self, method: str, segments: tuple[str, ...], params: dict[str, str] | None, body: Any,
              accept_any: bool, timeout: float | None, retry: bool = True) -> Any:
        """One request, tried up to :data:`ATTEMPTS` times when it failed on the way: reads after a
        lost connection, a timeout or a 502/503/504; writes (every write this client makes is
        idempotent: a declaration, a deletion, a binding) after a lost connection or a 502/503/504,
        never after a timeout (the broker may still be making the change: the next run finishes it)."""
        attempts = ATTEMPTS if retry else 1
        if method != "GET":
            self._parameters = None  # a write may change them
        for attempt in range(attempts):
            try:
                return self._send_once(method, segments, params, body, accept_any, timeout)
            except _Transient as failure:
                may = method == "GET" or failure.kind != "timeout"
                if attempt + 1 >= attempts or not may:
                    more = f" (tried {attempt + 1} times)" if attempt else ""
                    raise BrokerError(f"{failure.error}{more}") from None
                time.sleep(BACKOFF[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, method: str, segments: tuple[str, ...], params: dict[str, str] | None, body: Any,
                   accept_any: bool, timeout: float | None) -> Any:
        path = "/api/" + "/".join(_segment(s) for s in segments)
        with self._counting:
            self.requests_made[method] += 1
        timeout = timeout or self.timeout
        try:
            data = None if body is None else json.dumps(body, allow_nan=False).encode("utf-8")
        except ValueError:  # NaN or infinity: no JSON holds them
            raise BrokerError(f"request to {self.url} failed ({method} {path})") from None
        target = path + ("?" + urlencode(params) if params else "")
        deadline = _Deadline(timeout)
        try:
            response = self._transport.send(method, target, data, timeout, accept_any, deadline.serve)
            if deadline.cut.is_set():  # an answer that ends with the connection ends where it was cut
                raise Failure("timeout")
        except Failure as failure:
            if deadline.cut.is_set() or failure.kind == "timeout":
                raise _Transient("timeout", f"the management API at {self.url} did not answer {method} {path} "
                                            f"within {timeout:g}s") from None
            raise self._failure(failure, method, path) from None
        finally:
            deadline.stop()
        status = response.status
        if 300 <= status < 400:  # never followed: the credentials would go wherever it points
            where = redact_url(response.headers.get("location", "")) or "nowhere"
            raise BrokerError(f"the management API at {self.url} redirected {method} {path} to {where} (HTTP {status}); "
                              "redirects are not followed, so that the credentials go nowhere else: give the URL it "
                              "redirects to")
        if status == 401:
            reason = _reason(response)
            if reason.lower().startswith("access refused"):  # logged in, not allowed there ("Login failed",
                # "Not_Authorized": the credentials)
                raise BrokerError(
                    f"the broker at {self.url} refused {method} {path} to user {self.user!r}: {reason} (HTTP 401): "
                    "the user lacks a permission in that vhost (an apply stopped while it created the vhost "
                    "leaves it without the permissions RabbitMQ gives a vhost's creator: set them, and re-run)"
                )
            if reason.lower().startswith("not ") and reason.lower().endswith(" user"):  # "Not administrator user"
                raise BrokerError(
                    f"the broker at {self.url} refused {method} {path} to user {self.user!r}: {reason} (HTTP 401): "
                    "the tool needs a user with the administrator tag (it reads the broker's definitions and "
                    "creates vhosts, users and permissions); give it one, or connect as another user"
                )
            raise BrokerError(f"the broker at {self.url} refused the credentials of user {self.user!r} (HTTP 401)")
        if status >= 500:
            text = f"the broker at {self.url} failed on {method} {path}: HTTP {status} {_reason(response)}".rstrip()
            if status in RETRY_STATUSES:
                raise _Transient("unavailable", text)
            raise BrokerFailed(f"{text} (the broker's log has the details)", status)
        if status >= 400:
            raise RequestRefused(status, _reason(response), method, path, self.url)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BrokerFailed(f"the broker at {self.url} sent a non-JSON answer to {method} {path}", status) from None

    def _failure(self, failure: Failure, method: str, path: str) -> BrokerError:
        """The error to raise for a request that failed on the way (a lost connection is transient)."""
        if failure.kind in ("tls", "file"):
            return BrokerError(f"TLS error talking to {self.url}: {self._tls_problem(failure)}")
        if failure.kind == "connection":
            return _Transient("connection", f"cannot reach the management API at {self.url} (is RabbitMQ running with "
                                            f"rabbitmq_management enabled?) on {method} {path}")
        if failure.kind == "broken":
            return _Transient("connection", f"the connection to {self.url} broke while the answer to {method} {path} "
                                            "was read")
        if failure.kind == "decoding":
            return BrokerError(f"the answer of {self.url} to {method} {path} could not be decompressed (a proxy in "
                               "between?)")
        if failure.kind == "unsupported":
            return BrokerError(failure.text)
        return BrokerError(f"request to {self.url} failed ({method} {path})")

    def _tls_problem(self, error: BaseException) -> str:
        """What went wrong with TLS, naming the file at fault where one is."""
        verify = self._transport.verify  # the CA bundle the environment names, when none is given
        ca = verify if isinstance(verify, str) else None
        cert, key = self.cert if isinstance(self.cert, tuple) else (self.cert, None)
        return tls_problem(error, self.url, ca=ca, cert=cert, key=key, verify=self.verify is not False)

    def get(self, *segments: str, params: dict[str, str] | None = None, shape: Any = "any",
            read: Callable[[], Any] | None = None) -> Any:
        """GET, mapping 403 to a clear error (reads must be allowed for the tool to work), and
        checking that the answer has ``shape`` (:mod:`topology.broker.shapes`): one clear error
        where it has not, before anything relies on it. ``read``: as :meth:`request` takes it."""
        try:
            answer = self.request("GET", *segments, params=params, read=read)
        except RequestRefused as refused:
            if refused.status == 403:
                raise BrokerError(
                    f"user {self.user!r} may not read /api/{'/'.join(segments)} on {self.url}: {refused.reason}"
                ) from None
            raise
        return self._checked(segments, answer, shape)

    def _checked(self, segments: tuple[str, ...], answer: Any, shape: Any) -> Any:
        """``answer`` to ``GET /api/<segments…>``, if it has ``shape``; else one clear error."""
        if answer is None:  # an empty body, or null: a GET RabbitMQ answers always has a value
            problem = None if shape == "any" else "the answer is empty"
        else:
            problem = shape_problem(answer, shape)
        if problem:
            raise self._unlike_rabbitmq(segments, problem)
        return answer

    def _unlike_rabbitmq(self, segments: tuple[str, ...], problem: str) -> BrokerError:
        """The error for an answer to ``GET /api/<segments…>`` of a shape RabbitMQ never sends."""
        return BrokerError(f"the broker at {self.url} answered GET /api/{'/'.join(segments)} with something RabbitMQ "
                           f"does not send ({problem}): is that the management API of a RabbitMQ broker?")

    def get_or_none(self, *segments: str, params: dict[str, str] | None = None, shape: Any = "any",
                    read: Callable[[], Any] | None = None) -> Any:
        """GET, with ``None`` for a 404."""
        try:
            return self.get(*segments, params=params, shape=shape, read=read)
        except RequestRefused as refused:
            if refused.status == 404:
                return None
            raise BrokerError(str(refused)) from None

    # -- reads -------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        try:
            found = self.get("overview", params=_OVERVIEW, shape=shapes.OVERVIEW)
        except RequestRefused as refused:
            raise BrokerError(f"{self.url} does not answer as the RabbitMQ management API: GET /api/overview got "
                              f"HTTP {refused.status} {refused.reason}; give the URL the management UI is served at, "
                              "without /api") from None
        self._remember_version(found)
        return found

    def vhosts(self) -> list[dict[str, Any]]:
        return self.get("vhosts", params=_VHOSTS, shape=[shapes.NAMED]) or []

    def read_ahead(self) -> None:
        """Start the reads every plan makes (the overview and the vhost list) in the background;
        :meth:`read_ahead_vhost` adds each vhost's definitions as the files name them."""
        self.prefetch("overview", params=_OVERVIEW)
        self.prefetch("vhosts", params=_VHOSTS)

    def read_ahead_vhost(self, vhost: str, gated: bool = True) -> None:
        self.prefetch("definitions", vhost, gated=gated, read=lambda: self._read_definitions(vhost))

    def vhost_limits(self) -> list[dict[str, Any]]:
        """Every vhost's limits: ``[{"vhost": ..., "value": {"max-queues": 10}}]``."""
        return self.get("vhost-limits", shape=[shapes.VHOST_LIMITS]) or []

    def global_parameters(self) -> list[dict[str, Any]]:
        return self.get("global-parameters", shape=[shapes.GLOBAL_PARAMETER]) or []

    def definitions(self, vhost: str) -> dict[str, Any] | None:
        """The vhost's definitions export (exchanges, queues, bindings, policies, parameters); from
        the broker's lists where its own export is slow (see :meth:`_read_definitions`: the same
        objects, each entry as its list gives it, for :func:`topology.broker.live.definitions_state`)."""
        return self.get_or_none("definitions", vhost, read=lambda: self._read_definitions(vhost))

    def _read_definitions(self, vhost: str) -> Any:
        """``GET /api/definitions/{vhost}``; where the broker exports slowly (:func:`has_slow_export`), the
        same objects from its lists (:mod:`topology.broker.lists`), the queues and the bindings read
        at once; where a list says the vhost is not there, the export's own answer. Its shape is
        checked here, in the thread that reads it: each list's, or the export's."""
        def export() -> Any:
            segments = ("definitions", vhost)
            answer = self._checked(segments, self._send("GET", segments, None, None, False, None), shapes.DEFINITIONS)
            return lists.without_bindings_to_queues_left_out(answer)

        if not has_slow_export(self._broker_version()):
            return export()
        answers = self._read_lists(("queues", "exchanges", "policies"), vhost)
        errors = [answer for answer in answers.values() if isinstance(answer, Exception)]
        if any(isinstance(e, RequestRefused) and e.status == 404 for e in errors):
            return export()  # the vhost is gone (or not there yet): what the export says of it, as without the lists
        if errors:
            raise errors[0]
        return lists.export(vhost, answers["queues"], answers["exchanges"], answers["bindings"], answers["policies"],
                            answers["parameters"], as_listed=True)  # read by definitions_state alone

    def _read_lists(self, sections: tuple[str, ...], vhost: str | None = None) -> dict[str, Any]:
        """The lists of ``sections``, the bindings and the parameters (of ``vhost``; ``None``: of every
        vhost), up to three reads at once: the first of ``sections`` (the queues, as long to read as
        the bindings) in the caller's thread; the bindings, and the other lists one after the other
        (short ones), each in a list thread (shared by the vhosts read at once: one may wait for
        another's). Each is its answer, or the error reading it raised (for the caller to raise, in
        the order of ``sections``, the parameters, the bindings)."""
        first, rest = sections[0], sections[1:]

        def others() -> dict[str, Any]:
            answers = {section: _outcome(self._read_list, section, vhost) for section in rest}
            answers["parameters"] = _outcome(self._every_parameter)
            return answers

        pool = self._lists()
        try:
            bindings = pool.submit(self._read_list, "bindings", vhost)
            short = pool.submit(others)
        except RuntimeError:  # closed meanwhile
            raise BrokerError("the read was cancelled") from None
        answers: dict[str, Any] = {first: _outcome(self._read_list, first, vhost)}
        answers.update(short.result())  # others() answers each error as its list's answer
        answers["bindings"] = _outcome(bindings.result)
        return answers

    def _lists(self) -> Any:
        """The threads that read lists beside the caller's (made once: they keep their connections
        from one read to the next)."""
        if self._listing is None:
            from concurrent.futures import ThreadPoolExecutor

            with self._lists_lock:
                if self._listing is None:
                    self._listing = ThreadPoolExecutor(READERS, thread_name_prefix="topology-list")
        return self._listing

    def _read_list(self, section: str, vhost: str | None = None) -> Any:
        """One of the lists :mod:`topology.broker.lists` reads (of ``vhost``; ``None``: of every
        vhost), shape-checked."""
        segments, query, shape = lists.read_of(section, vhost)
        answer = self._send("GET", segments, query, None, False, None)
        problem = shape_problem(answer, [shape])
        if problem:
            raise self._unlike_rabbitmq(segments, problem)
        return answer

    def _every_parameter(self) -> Any:
        """``GET /api/parameters``, read once for the vhosts read meanwhile (see :attr:`_parameters`);
        a thread that finds it being read waits for that read, which its own thread is making."""
        with self._lists_lock:
            slot = self._parameters
            mine = slot is None
            if mine:
                slot = self._parameters = _Prefetch()
        assert slot is not None
        if mine:
            try:
                slot.result = self._read_list("parameters")
            except Exception as error:  # for every vhost that waits on it, raised there
                slot.error = error
            finally:
                slot.done.set()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _broker_version(self) -> tuple[int, ...]:
        """The broker's version, as the overview says it (read once; ``()`` when it does not say):
        the overview read ahead if a thread is reading it, else read here (never waiting for a read
        still queued or held for :attr:`gate`: the thread that asks may be one the queue waits for)."""
        if self._version is None:
            slot = self._prefetched.get(_read_key(("overview",), _OVERVIEW))
            if slot is not None and slot.started:
                slot.done.wait()
                answer = slot.result if slot.error is None else None
            else:
                answer = self._send("GET", ("overview",), _OVERVIEW, None, False, None)
            self._remember_version(answer)
        return self._version or ()

    def _remember_version(self, overview: Any) -> None:
        """Keep the version an overview says (``()`` when it says none)."""
        found = overview.get("rabbitmq_version") if isinstance(overview, dict) else None
        self._version_text = str(found or "")
        self._version = parse_version(self._version_text)

    def exchanges(self, vhost: str | None) -> list[dict[str, Any]]:
        """The vhost's exchanges (``None``: every vhost's, each with its ``vhost``) as the exchange
        list shows them, built-in and internal ones included."""
        return self.get_or_none(*(("exchanges",) if vhost is None else ("exchanges", vhost)), params={
            "columns": "vhost,name,type,durable,auto_delete,internal,arguments"}, shape=[shapes.EXCHANGE]) or []

    def deprecated_features(self) -> dict[str, str] | None:
        """Each deprecated feature's state on the broker (``permitted`` or ``denied``), for those
        whose state it gives; ``None`` where the broker has no such endpoint (3.10 has none)."""
        try:
            found = self.get("deprecated-features", shape=[shapes.NAMED])
        except RequestRefused:  # 3.10 answers 406 to a path it does not know, others 404
            return None
        if not isinstance(found, list):
            return None
        # 4.0.5 gives only each feature's deprecation phase, not its state: nothing said
        return {str(f["name"]): str(f["state"]) for f in found if isinstance(f, dict) and "name" in f and "state" in f}

    def all_definitions(self) -> dict[str, Any]:
        """The whole broker's definitions export (every vhost's objects, each with its ``vhost``); where
        the broker exports slowly (:func:`has_slow_export`), the same objects from its lists of every
        vhost (:func:`topology.broker.lists.export_all`): the queues and the bindings read at once,
        then the others."""
        if not has_slow_export(self._broker_version()):
            return lists.without_bindings_to_queues_left_out(self.get("definitions", shape=shapes.DEFINITIONS) or {},
                                                            every_vhost=True)
        answers = self._read_lists(("queues", *lists.BROKER_READS, "exchanges", "policies"))
        for answer in answers.values():
            if isinstance(answer, Exception):
                raise answer
        return lists.export_all(answers, self._version_text)

    def queue_statistics(self, vhost: str) -> dict[str, dict[str, Any]]:
        """Every queue of the vhost by name, with its type, whether it is exclusive, and the counts
        that show it in use (messages, unacknowledged ones, consumers): what deleting queues checks,
        for all of them in one request. Kept for :meth:`recent_queue_statistics`."""
        started = time.monotonic()
        found = self.get_or_none("queues", vhost, params={
            "columns": "name,type,exclusive,messages,messages_unacknowledged,consumers", **lists.UNSORTED},
            shape=[shapes.NAMED]) or []  # by name: unsorted (with statistics, 3.10's sort is most of the read)
        statistics = {str(entry["name"]): entry for entry in found}
        self._statistics[vhost] = (started, time.monotonic() - started, statistics)
        return statistics

    def recent_queue_statistics(self, vhost: str, seconds: float) -> tuple[float, dict[str, dict[str, Any]]] | None:
        """The last :meth:`queue_statistics` of the vhost (when it was asked for, and what it said)
        if it was asked for less than ``seconds`` ago (a plan's, for the apply that follows it)."""
        read = self._statistics.get(vhost)
        return (read[0], read[2]) if read is not None and time.monotonic() - read[0] < seconds else None

    def statistics_took(self, vhost: str) -> float:
        """Seconds the last :meth:`queue_statistics` of the vhost took (0 before the first)."""
        read = self._statistics.get(vhost)
        return read[1] if read is not None else 0.0

    def queue_details(self, vhost: str, name: str) -> dict[str, Any] | None:
        """A queue's declaration and counts (``None`` when it does not exist)."""
        return self.get_or_none("queues", vhost, name, params={"columns": (
            "name,type,durable,auto_delete,arguments,messages,message_bytes,messages_unacknowledged,consumers"
        )}, shape=shapes.QUEUE_DETAILS)

    def queues_health(self, vhost: str, columns: str) -> list[dict[str, Any]]:
        """The queues of a vhost with the given columns (policy, mirrors, members...; one request)."""
        return self.get_or_none("queues", vhost, params={"columns": columns}, shape=[shapes.NAMED]) or []

    def nodes(self) -> tuple[list[str], list[str]]:
        """Names of the cluster's nodes: all of them, and the running ones."""
        nodes = self.get("nodes", params={"columns": "name,running"}, shape=[shapes.NAMED]) or []
        return sorted(str(n["name"]) for n in nodes), sorted(str(n["name"]) for n in nodes if n.get("running"))

    def users(self) -> list[dict[str, Any]]:
        """Every user, with its password hash, hashing algorithm, tags and limits (never printed)."""
        return self.get("users", shape=[shapes.NAMED]) or []

    def get_user(self, name: str) -> dict[str, Any] | None:
        return self.get_or_none("users", name, shape=shapes.NAMED)

    def delete_user(self, name: str) -> None:
        self.request("DELETE", "users", name)

    def user_connections(self, user: str) -> int:
        """How many connections are open as ``user``, from the broker's connection tracking (not the
        statistics, which lag: a connection a second old counts)."""
        return len(self.get_or_none("connections", "username", user, shape=["object"]) or [])

    def permissions(self) -> list[dict[str, Any]]:
        return self.get("permissions", shape=[shapes.PERMISSION]) or []

    def topic_permissions(self) -> list[dict[str, Any]]:
        return self.get("topic-permissions", shape=[shapes.PERMISSION]) or []

    def queue_bindings(self, vhost: str, name: str) -> list[dict[str, Any]]:
        """Every binding whose destination is the queue (the default exchange's included)."""
        return self.get_or_none("queues", vhost, name, "bindings", shape=[shapes.BINDING]) or []

    def policies(self, vhost: str | None, operator: bool = False) -> list[dict[str, Any]]:
        """The policies (or operator policies) of a vhost; of every vhost with ``None`` (one request)."""
        segments = ("operator-policies" if operator else "policies",) + ((vhost,) if vhost is not None else ())
        return self.get_or_none(*segments, shape=[shapes.POLICY]) or []

    def exclusive_queues(self, vhost: str) -> set[str]:
        """Names of the vhost's exclusive queues (those of connected clients; read without the
        statistics, which the broker would compute for every queue and may answer from a list it
        computed a while ago)."""
        queues = self.get_or_none("queues", vhost, params={"columns": "name,exclusive", "disable_stats": "true",
                                                           **lists.UNSORTED},
                                  shape=[shapes.NAMED]) or []
        return {q["name"] for q in queues if q.get("exclusive")}

    def exchange_bindings(self, vhost: str, exchange: str) -> list[dict[str, Any]]:
        """Every binding whose source is the exchange, those to exclusive queues included."""
        return self.get_or_none("exchanges", vhost, exchange, "bindings", "source", shape=[shapes.BINDING]) or []

    def bindings_between(self, vhost: str, source: str, destination_type: str, destination: str) -> list[dict[str, Any]]:
        kind = "q" if destination_type == "queue" else "e"
        return self.get_or_none("bindings", vhost, "e", source, kind, destination, shape=[shapes.BINDING]) or []

    # -- writes ------------------------------------------------------------

    def import_definitions(self, document: dict[str, Any]) -> None:
        """Load a definitions document (``POST /api/definitions``)."""
        self.request("POST", "definitions", body=document)

    def import_vhost_definitions(self, vhost: str, document: dict[str, Any], timeout: float | None = None) -> None:
        """Create the objects of a definitions document in one vhost (``POST /api/definitions/{vhost}``).

        The broker skips objects that already exist, whatever their settings, and some failures
        (a binding to a missing queue) without a word: what it made must be checked after."""
        self._send("POST", ("definitions", vhost), None, document, False,
                   max(self.timeout, timeout or 0.0, IMPORT_TIMEOUT), retry=False)  # a failed import is redone object by object

    def delete_vhost(self, vhost: str) -> None:
        self.request("DELETE", "vhosts", vhost)

    def put_vhost(self, vhost: str, body: dict[str, Any]) -> None:
        self.request("PUT", "vhosts", vhost, body=body)

    def put_exchange(self, vhost: str, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", "exchanges", vhost, name, body=body)

    def delete_exchange(self, vhost: str, name: str) -> None:
        self.request("DELETE", "exchanges", vhost, name)

    def put_queue(self, vhost: str, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", "queues", vhost, name, body=body)

    def delete_queue(self, vhost: str, name: str, *, if_empty: bool = True, if_unused: bool = True) -> None:
        """Delete a queue; by default the broker itself refuses when it holds messages or has consumers."""
        params = {}
        if if_empty:
            params["if-empty"] = "true"
        if if_unused:
            params["if-unused"] = "true"
        self.request("DELETE", "queues", vhost, name, params=params)

    def create_binding(self, vhost: str, source: str, destination_type: str, destination: str, body: dict[str, Any]) -> None:
        kind = "q" if destination_type == "queue" else "e"
        self.request("POST", "bindings", vhost, "e", source, kind, destination, body=body)

    def delete_binding(self, vhost: str, source: str, destination_type: str, destination: str, properties_key: str) -> None:
        kind = "q" if destination_type == "queue" else "e"
        self.request("DELETE", "bindings", vhost, "e", source, kind, destination, properties_key)

    def put_vhost_limit(self, vhost: str, limit: str, value: int) -> None:
        self.request("PUT", "vhost-limits", vhost, limit, body={"value": value}, accept_any=True)

    def delete_vhost_limit(self, vhost: str, limit: str) -> None:
        self.request("DELETE", "vhost-limits", vhost, limit, accept_any=True)

    def put_global_parameter(self, name: str, value: Any) -> None:
        self.request("PUT", "global-parameters", name, body={"name": name, "value": value})

    def delete_global_parameter(self, name: str) -> None:
        self.request("DELETE", "global-parameters", name)

    def put_user(self, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", "users", name, body=body)

    def put_user_limit(self, user: str, limit: str, value: int) -> None:
        # RabbitMQ answers 406 to this endpoint when the request accepts only JSON
        self.request("PUT", "user-limits", user, limit, body={"value": value}, accept_any=True)

    def delete_user_limit(self, user: str, limit: str) -> None:
        self.request("DELETE", "user-limits", user, limit, accept_any=True)

    def put_permission(self, vhost: str, user: str, body: dict[str, Any]) -> None:
        self.request("PUT", "permissions", vhost, user, body=body)

    def delete_permission(self, vhost: str, user: str) -> None:
        self.request("DELETE", "permissions", vhost, user)

    def put_topic_permission(self, vhost: str, user: str, body: dict[str, Any]) -> None:
        self.request("PUT", "topic-permissions", vhost, user, body=body)

    def delete_topic_permission(self, vhost: str, user: str, exchange: str) -> None:
        """Delete a user's topic permission on one exchange of a vhost."""
        self.request("DELETE", "topic-permissions", vhost, user, exchange)

    def put_policy(self, vhost: str, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", "policies", vhost, name, body=body)

    def delete_policy(self, vhost: str, name: str) -> None:
        self.request("DELETE", "policies", vhost, name)

    def put_operator_policy(self, vhost: str, name: str, body: dict[str, Any]) -> None:
        self.request("PUT", "operator-policies", vhost, name, body=body)

    def delete_operator_policy(self, vhost: str, name: str) -> None:
        self.request("DELETE", "operator-policies", vhost, name)

    def put_parameter(self, component: str, vhost: str, name: str, value: Any) -> None:
        """Set a vhost runtime parameter (a shovel, federation upstream or upstream set)."""
        self.request("PUT", "parameters", component, vhost, name,
                     body={"component": component, "vhost": vhost, "name": name, "value": value})

    def delete_parameter(self, component: str, vhost: str, name: str) -> None:
        self.request("DELETE", "parameters", component, vhost, name)

    def shovels(self, vhost: str) -> list[dict[str, Any]]:
        """The status of the vhost's shovels (the shovel management plugin)."""
        return self.get("shovels", vhost)


class _Transient(Exception):
    """A failure on the way that another attempt may not meet: ``kind`` is ``connection``,
    ``timeout`` or ``unavailable`` (502, 503, 504); ``error`` the one line to report."""

    def __init__(self, kind: str, error: str):
        super().__init__(error)
        self.kind = kind
        self.error = error


class _Prefetch:
    """A read started ahead: its answer or error once ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.started = False
        """Set as a reading thread starts it (it is then answered without waiting for anything)."""
        self.result: Any = None
        self.error: BaseException | None = None


# -- a deadline on the whole request -------------------------------------------------
#
# A socket's timeout bounds each wait on it, not the request: a server that sends a byte every
# few seconds never trips it. So the transport tells each request's deadline the socket that
# serves it, once connected and before the request goes out, and the deadline's timer shuts that
# socket down when it passes: the blocked read fails at once, and the request is reported as not
# answered in time (also an answer that ends with the connection, which http.client takes from
# the connection as it starts reading it).


class _Deadline:
    """The deadline of one request, started now: ``timeout`` seconds for the whole answer."""

    RECHECK = 0.05
    """Seconds between looks for the socket once the deadline passed before there was one
    (still connecting: the connect timeout bounds that wait, then the socket is cut)."""

    def __init__(self, timeout: float):
        self.cut = threading.Event()
        self.sock: Any = None
        self._guard = threading.Lock()
        self._stopped = False
        self._arm(timeout)

    def _arm(self, seconds: float) -> None:
        _WATCH.expire_after(seconds, self)

    def _expire(self) -> None:
        import socket

        with self._guard:
            if self._stopped:
                return
            sock = self.sock
            if sock is None:  # not connected yet: look again shortly
                self._arm(self.RECHECK)
                return
            self.cut.set()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed meanwhile
                pass

    def serve(self, sock: Any) -> None:
        """The socket of the connection the request goes out on."""
        with self._guard:
            if not self._stopped:
                self.sock = sock

    def stop(self) -> None:
        with self._guard:
            self._stopped = True
            self.sock = None


class _Watch:
    """One thread for the deadlines of every request (a timer thread each cost more CPU than the
    request itself: 10,000 deletions, 3 s): it sleeps until the first to pass, and expires it
    unless it was stopped meanwhile (a stopped deadline is dropped when its time comes)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _Deadline]] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._count = 0
        self._compact_at = 1_000

    def expire_after(self, seconds: float, deadline: _Deadline) -> None:
        import heapq

        with self._changed:
            self._count += 1
            if len(self._due) >= self._compact_at:  # stopped deadlines wait for their time: drop them
                self._due = [entry for entry in self._due if not entry[2]._stopped]
                heapq.heapify(self._due)
                self._compact_at = max(1_000, 2 * len(self._due))
            heapq.heappush(self._due, (time.monotonic() + seconds, self._count, deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="topology-deadlines", daemon=True)
                self._thread.start()
            elif self._due[0][2] is deadline:
                self._changed.notify()  # sooner than what the thread sleeps for

    def _run(self) -> None:
        import heapq

        while True:
            with self._changed:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._changed.wait(None if not self._due else self._due[0][0] - time.monotonic())
                _, _, deadline = heapq.heappop(self._due)
            if not deadline._stopped:
                deadline._expire()  # outside the lock: it may arm itself again


_WATCH = _Watch()


def _outcome(read: Callable[..., Any], *arguments: Any) -> Any:
    """What ``read(*arguments)`` returns, or the error it raises (to be raised in order later)."""
    try:
        return read(*arguments)
    except Exception as error:
        return error


def _read_key(segments: tuple[str, ...], params: dict[str, str] | None) -> tuple[Any, ...]:
    return (segments, tuple(sorted((params or {}).items())))


def _reason(response: Answer) -> str:
    try:
        data = response.json()
    except ValueError:
        text = response.text.lstrip()
        if text.startswith("<") or "html" in response.headers.get("content-type", "").lower():
            return response.reason or ""  # a web server's or a proxy's error page: its status words say it
        return _first_line(text)[:300] or response.reason or ""
    if isinstance(data, dict):
        import html

        # the broker HTML-escapes some reasons (&lt;&lt;...&gt;&gt;)
        return html.unescape(str(data.get("reason") or data.get("error") or "")).strip()[:500]
    return ""


_TLS_HANDSHAKE = {
    "WRONG_VERSION_NUMBER": "that port does not speak TLS (is it an http:// port?)",
    "TLSV1_ALERT_UNKNOWN_CA": "the broker does not trust the client certificate{cert}",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker refused the client certificate{cert}",
    "TLSV1_ALERT_ACCESS_DENIED": "the broker refused the client certificate{cert}",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker asks for a client certificate (tls.cert and tls.key of the "
                                         "target in topology.toml)",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the broker refused the TLS handshake (does it require a client certificate, "
                                     "or a TLS version or cipher this machine does not offer?)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the broker and this machine have no TLS version in common",
    "UNSUPPORTED_PROTOCOL": "the broker and this machine have no TLS version in common",
    "NO_PROTOCOLS_AVAILABLE": "the broker and this machine have no TLS version in common",
}
"""OpenSSL's reasons for a failed handshake, in words that say what to do."""


def tls_problem(error: BaseException, url: str, *, ca: str | None = None, cert: str | None = None,
                key: str | None = None, verify: bool = True) -> str:
    """What went wrong with TLS talking to ``url``, in words: the file at fault (``ca``, ``cert``,
    ``key``) where one is, and what to do. Never the TLS library's own text."""
    failure = _ssl_error(error)
    code = str(failure.reason) if failure is not None and failure.reason else ""
    if not code:
        found = re.search(r"\[(?:SSL|X509|PEM): ([A-Z0-9_]+)\]", str(error))
        code = found.group(1) if found else ""
    if code == "CERTIFICATE_VERIFY_FAILED" or isinstance(failure, ssl.SSLCertVerificationError):
        return _verify_problem(str(getattr(failure, "verify_message", "") or ""), url, ca)
    if code in _TLS_HANDSHAKE:
        return _TLS_HANDSHAKE[code].replace("{cert}", f" {cert}" if cert else "")
    if isinstance(failure, ssl.SSLEOFError) or "EOF occurred in violation of protocol" in str(error) \
            or code == "UNEXPECTED_EOF_WHILE_READING":
        if cert:
            return f"the broker closed the TLS connection during the handshake (does it trust the client certificate {cert}?)"
        return "the broker closed the TLS connection during the handshake (does it require a client certificate?)"
    problem = tls_file_problem(ca if verify else None, cert, key)
    if problem:
        return problem
    host = urlsplit(url).netloc
    return f"the TLS handshake with {host} failed" + (f" (OpenSSL: {code})" if code else "")


def _verify_problem(why: str, url: str, ca: str | None) -> str:
    host = urlsplit(url).hostname or url
    if "mismatch" in why.lower():
        return (f"the broker's certificate is not for the host name {host}: connect with a name the certificate "
                "holds (or --insecure, for tests only)")
    if "expired" in why.lower():
        return "the broker's certificate has expired"
    if "not yet valid" in why.lower():
        return "the broker's certificate is not valid yet (is this machine's clock right?)"
    trusted = f"by the CA file {ca}" if ca else "by this machine's CA certificates"
    return (f"the broker's certificate is not trusted {trusted}: give the CA that signed it (tls.ca of the target in "
            "topology.toml), or --insecure for tests only")


def tls_file_problem(ca: str | None, cert: str | None, key: str | None) -> str | None:
    """What is wrong with the TLS files (a CA bundle, a client certificate and its key), or ``None``."""
    if ca is not None:
        if not os.path.exists(ca):
            return f"the CA file {ca} does not exist"
        try:
            verifying_context(ca)
        except ssl.SSLError:
            return f"the CA file {ca} holds no PEM certificate"
        except OSError as error:
            return f"cannot read the CA file {ca}: {error.strerror or 'unreadable'}"
    if cert is not None:
        for what, path in (("client certificate", cert), ("client key", key)):
            if path is not None and not os.path.isfile(path):
                return f"the {what} file {path} does not exist"
        try:
            present_certificate(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), cert, key)
        except ssl.SSLError:
            if key is None:
                return (f"the client certificate file {cert} cannot be used: it must hold the certificate and its "
                        "key, in PEM")
            return (f"the client certificate {cert} and key {key} cannot be used: not PEM, a key with a passphrase, "
                    "or a key that does not belong to the certificate")
        except OSError as error:
            return f"cannot read the client certificate {cert}: {error.strerror or 'unreadable'}"
    return None


def _ssl_error(error: BaseException) -> ssl.SSLError | None:
    """The TLS library's error inside ``error`` (it may be nested several exceptions deep)."""
    seen: set[int] = set()
    stack: list[Any] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        stack.extend(current.args)
        stack.extend(getattr(current, name, None) for name in ("reason", "__cause__", "__context__"))
    return None


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else ""
