"""The only code that speaks AMQP (pika).

Three users of one connection factory (:class:`Amqp`):

- :class:`QueueInspector` learns, at the last moment and exactly, whether a queue
  holds messages or has consumers before apply deletes it (the management statistics
  lag by seconds, and quorum queues refuse the broker-side ``if-empty`` check);
- :class:`ApplyLock` makes applies that change the same vhosts (or cluster-wide objects)
  take turns: exclusive, auto-deleted queues that the broker drops the moment their
  connection goes;
- :class:`MessageMover` moves messages between two queues of a vhost with publisher
  confirms and manual acks, so no message is acked at its source before the broker
  has confirmed its copy.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib
import logging
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from topology.errors import BrokerError, LockHeld
from topology.locks import LockKey, describe_keys
from topology.rules.queues import MAX_QUEUE_NAME_BYTES

logging.getLogger("pika").setLevel(logging.CRITICAL)  # pika logs tracebacks for refused connections


def default_amqp_url(management_url: str) -> str:
    """The AMQP URL of the broker behind ``management_url``: same host, port 5672 (5671 for https)."""
    parts = urlsplit(management_url)
    scheme, port = ("amqps", 5671) if parts.scheme == "https" else ("amqp", 5672)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def ssl_context(ca: str | None = None, cert: str | None = None, key: str | None = None, verify: bool = True) -> Any:
    """A client TLS context: verify the broker against ``ca`` (a PEM file, or a folder of them;
    default: the system's CAs) unless ``verify`` is false; present ``cert``/``key`` when given.
    Each file is loaded in a step of its own, so a failure names the file at fault."""
    from topology.broker.client import tls_file_problem
    from topology.broker.transport import present_certificate, unverified, verifying_context

    try:
        context = verifying_context(ca)
    except (OSError, ValueError):  # ssl.SSLError is an OSError
        problem = tls_file_problem(ca, None, None) if ca else None
        raise BrokerError(f"cannot set up TLS for AMQP: {problem or _unloadable('the CA file', ca)}") from None
    if cert:
        try:
            present_certificate(context, cert, key)
        except (OSError, ValueError):
            problem = tls_file_problem(None, cert, key) or _unloadable("the client certificate", cert)
            raise BrokerError(f"cannot set up TLS for AMQP: {problem}") from None
    context.topology_ca = ca  # type: ignore[attr-defined]  # named when the broker's certificate is not trusted
    if not verify:
        unverified(context)
    return context


def _unloadable(what: str, path: str | None) -> str:
    return f"{what} {path} cannot be loaded" if path else "this machine's CA certificates cannot be loaded"


class NoVhostAccess(BrokerError):
    """The AMQP user may not open the vhost it was asked to."""


class Amqp:
    """Where and as whom to open AMQP connections; parsed once, never shows the password.

    The URL's path names the vhost that holds the apply locks' queues (``/`` when empty)."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 10.0, ssl_context: Any = None):
        """``ssl_context``: the TLS settings for an ``amqps://`` URL (default: verify with the system's CAs)."""
        parts, port, problem = _parse_url(url)
        if parts is None:
            raise BrokerError(f"invalid AMQP URL {_masked(url)!r}: {problem}; expected amqp://host:port/vhost or "
                              "amqps://host:port/vhost")
        self.host = parts.hostname
        self.port = port or (5671 if parts.scheme == "amqps" else 5672)
        self.tls = parts.scheme == "amqps"
        self.user = unquote(parts.username) if parts.username else user
        self.password = unquote(parts.password) if parts.password else password
        self.timeout = timeout
        self.lock_vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.display = f"{parts.scheme}://{self.host}:{self.port}"
        self.ssl_context = ssl_context

    def connect(self, vhost: str, name: str, properties: dict[str, Any] | None = None) -> Any:
        """A new blocking connection to ``vhost``; failures become one-line :class:`BrokerError`."""
        import pika

        params = pika.ConnectionParameters(
            host=self.host,
            port=self.port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(self.user, self.password),
            socket_timeout=self.timeout,
            blocked_connection_timeout=self.timeout,
            connection_attempts=1,
            ssl_options=pika.SSLOptions(self.ssl_context or ssl_context(), self.host) if self.tls else None,
            client_properties={"connection_name": name, **(properties or {})},
        )
        started = time.monotonic()
        try:
            return pika.BlockingConnection(params)
        except pika.exceptions.ProbableAuthenticationError:
            raise BrokerError(f"the broker at {self.display} refused the AMQP credentials of user {self.user!r}") from None
        except pika.exceptions.ProbableAccessDeniedError:
            raise NoVhostAccess(f"user {self.user!r} has no access to vhost {vhost!r} over AMQP at {self.display}") from None
        except (pika.exceptions.AMQPError, OSError) as error:
            why = connect_failure(error, self.timeout, url=self.display, ca=self.ca)
            where = "" if _tls_error(error) is not None else \
                "; --amqp-url or TOPOLOGY_AMQP_URL says where the broker's AMQP listener is"
            raise BrokerError(f"cannot connect to AMQP at {self.display} (after {time.monotonic() - started:.1f} s): "
                              f"{why}{where}") from None

    @property
    def ca(self) -> str | None:
        """The CA file the broker's certificate is checked against (``None``: the system's CAs)."""
        return getattr(self.ssl_context, "topology_ca", None)

    def failure(self, error: BaseException) -> str:
        """Why an open connection of this broker failed, in words (:func:`amqp_failure`)."""
        return amqp_failure(error, url=self.display, ca=self.ca)


def _parse_url(url: str) -> tuple[Any, int | None, str]:
    """(the parts of an AMQP URL, its port) or ``(None, None, what is wrong with it)``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None, None, "it does not parse as a URL"
    if parts.scheme not in ("amqp", "amqps"):
        return None, None, "it must start with amqp:// or amqps://"
    try:
        port = parts.port
    except ValueError:
        return None, None, "the port must be a number from 1 to 65535"
    if not parts.hostname:
        return None, None, "it names no host"
    return parts, port, ""


def _masked(url: str) -> str:
    """``url`` with whatever is before an ``@`` (a user, a password) masked: safe on URLs that do not parse."""
    from topology.broker.client import redact_url

    return redact_url(url)


def connect_failure(error: BaseException, timeout: float | None, *, url: str = "", ca: str | None = None) -> str:
    """Why opening an AMQP connection to ``url`` failed, in words (pika wraps the cause in classes
    of its own); ``ca``: the CA file the broker's certificate was checked against."""
    inner = _cause(error)
    name = type(inner).__name__
    tls = _tls_error(error)
    if tls is not None:
        return tls_failure(tls, url, ca)
    if isinstance(inner, socket.gaierror):
        return "the host name is not known"
    if isinstance(inner, ConnectionRefusedError) or name == "AMQPConnectorSocketConnectError":
        return "the connection was refused, or the host cannot be reached"
    if isinstance(inner, (TimeoutError, socket.timeout)) or name in ("AMQPConnectorStackTimeout", "AMQPConnectionWorkflowFailed"):
        return f"no AMQP handshake within {timeout:g} s" if timeout else "no AMQP handshake in time"
    if name in ("IncompatibleProtocolError", "StreamLostError", "AMQPConnectorAMQPHandshakeError"):
        return "what answers there does not speak AMQP 0-9-1 (or it expects TLS: amqps://)"
    if isinstance(inner, OSError) and inner.strerror:
        return _os_words(inner)
    return "the connection failed"


CONNECTION_DROPPED = "the connection dropped (the broker restarted, or the network cut it)"


def amqp_failure(error: BaseException, *, url: str = "", ca: str | None = None) -> str:
    """Why an open AMQP connection or channel failed, in words: never a pika class name, a Python
    exception or the TLS library's own text. ``url`` and ``ca`` as for :func:`connect_failure`."""
    import pika.exceptions as amqp

    if isinstance(error, amqp.ConnectionClosedByBroker):
        return f"the broker closed the connection: {broker_reply(error.reply_text)}"
    if isinstance(error, amqp.ChannelClosedByBroker):
        return f"the broker closed the channel: {broker_reply(error.reply_text)}"
    import ssl

    tls = _tls_error(error)
    if isinstance(tls, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):  # the TLS stream ended: the connection went
        return CONNECTION_DROPPED
    if tls is not None:
        return tls_failure(tls, url, ca)
    inner = _cause(error)
    if isinstance(error, (amqp.StreamLostError, amqp.AMQPHeartbeatTimeout)) or \
            isinstance(inner, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, EOFError)):
        return CONNECTION_DROPPED
    if isinstance(error, amqp.ConnectionWrongStateError):
        return "the connection had already closed (the broker restarted, or the network cut it)"
    if isinstance(error, amqp.ChannelWrongStateError):
        return "the channel had already closed"
    if isinstance(error, amqp.ConnectionClosed):
        return "the connection was closed" + (f": {broker_reply(error.reply_text)}" if error.reply_text else "")
    if isinstance(inner, (TimeoutError, socket.timeout)):
        return "the broker stopped answering in time"
    if isinstance(inner, OSError) and inner.strerror:
        return _os_words(inner)
    return "the connection failed"


_REPLY_CODE_NAME = re.compile(r"^\s*[A-Z][A-Z0-9_]{2,} - ")


def broker_reply(text: object) -> str:
    """The broker's reply text without the name of its reply code that it starts with:
    ``NOT_FOUND - no queue 'a' in vhost 'shop'`` → ``no queue 'a' in vhost 'shop'``."""
    shown = _REPLY_CODE_NAME.sub("", str(text or "")).strip()
    return shown or "no reason given"


_NOT_TLS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
"""OpenSSL's reasons when what answers does not speak TLS at all."""


def tls_failure(error: BaseException, url: str = "", ca: str | None = None) -> str:
    """Why the TLS handshake with the AMQP listener at ``url`` failed, in words (the management
    client's words for what both protocols share; never OpenSSL's tokens or ``_ssl.c`` places)."""
    from topology.broker.client import tls_problem

    code = str(getattr(error, "reason", None) or "")
    if not code:
        found = re.search(r"\[(?:SSL|X509|PEM): ([A-Z0-9_]+)\]", str(error))
        code = found.group(1) if found else ""
    if code in _NOT_TLS:
        return "that port does not speak TLS (use amqp:// for a plain AMQP port such as 5672)"
    return tls_problem(error, url, ca=ca)


def _cause(error: BaseException) -> BaseException:
    """The exception pika wraps (its first argument), or ``error`` itself."""
    return error.args[0] if error.args and isinstance(error.args[0], BaseException) else error


def _tls_error(error: BaseException) -> BaseException | None:
    """The TLS library's error in ``error`` (itself, or the one pika wraps), or ``None``."""
    import ssl

    for candidate in (error, _cause(error)):
        if isinstance(candidate, ssl.SSLError):
            return candidate
    return None


def _os_words(error: OSError) -> str:
    """The operating system's words for ``error``, starting lower case (``network is unreachable``)."""
    text = str(error.strerror)
    return text[0].lower() + text[1:]


CONSUMER_SETTLE_STEPS = 10
"""Re-reads, 0.1 s apart, before a consumer on a queue is taken to be someone else's."""

STREAM_READ_WAIT = 2.0
"""Seconds to wait for a stream's first message before taking it as empty."""


class QueueInspector:
    """Exact message and consumer counts through passive declares, one connection per vhost."""

    def __init__(self, amqp: Amqp):
        self.amqp = amqp
        self._connections: dict[str, Any] = {}
        self._pipelines: dict[str, _Pipeline] = {}

    def _connection(self, vhost: str) -> Any:
        connection = self._connections.get(vhost)
        if connection is None or not connection.is_open:
            connection = self._connections[vhost] = self.amqp.connect(vhost, "topology apply")
        return connection

    def counts(self, vhost: str, queue: str) -> tuple[int, int] | None:
        """(ready messages, consumers) of the queue, or ``None`` when it does not exist."""
        import pika

        try:
            channel = self._connection(vhost).channel()
            frame = channel.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as closed:
            if closed.reply_code == 404:
                return None
            raise BrokerError(f"cannot inspect queue {vhost}/{queue}: {broker_reply(closed.reply_text)}") from None
        except pika.exceptions.AMQPError as error:
            raise BrokerError(f"lost the AMQP connection while inspecting queue {vhost}/{queue}: "
                              f"{self.amqp.failure(error)}") from None
        _close_channel(channel)  # the counts are read: a connection lost now shows at the next use
        return frame.method.message_count, frame.method.consumer_count

    def counts_many(self, vhost: str, queues: Iterable[str]) -> dict[str, tuple[int, int] | None]:
        """:meth:`counts` of many queues of a vhost, pipelined: up to :data:`PIPELINE` passive
        declares are sent on one channel before their answers are read, which come back in the
        order sent. A queue that does not exist (``None``) makes the broker close the channel,
        dropping the declares sent after it: those are sent again on a new channel."""
        import pika

        found: dict[str, tuple[int, int] | None] = {}
        todo = list(dict.fromkeys(queues))
        while todo:
            try:
                pipeline = self._pipelines.get(vhost)
                if pipeline is None or not pipeline.channel.is_open:
                    pipeline = self._pipelines[vhost] = _Pipeline(self._connection(vhost))
                while todo and pipeline.closed is None:
                    window = todo[:PIPELINE]
                    answers = pipeline.declare(window, self.amqp.timeout)
                    for name, method in zip(window, answers):
                        found[name] = (method.message_count, method.consumer_count)
                    del todo[:len(answers)]
            except pika.exceptions.AMQPError as error:
                self._pipelines.pop(vhost, None)
                raise BrokerError(f"lost the AMQP connection while inspecting the queues of vhost {vhost}: "
                                  f"{self.amqp.failure(error)}") from None
            except TimeoutError:
                _close_channel(self._pipelines.pop(vhost).channel)  # answers still due must not be read as others'
                raise BrokerError(f"no answer in {self.amqp.timeout:g} s to passive declares of the queues of vhost "
                                  f"{vhost}") from None
            if pipeline.closed is not None:
                self._pipelines.pop(vhost, None)
                reason = pipeline.closed
                name = todo.pop(0)  # the first declare not answered is the one the broker refused
                if getattr(reason, "reply_code", None) == 404:
                    found[name] = None
                elif isinstance(reason, pika.exceptions.ChannelClosedByBroker):
                    raise BrokerError(f"cannot inspect queue {vhost}/{name}: {broker_reply(reason.reply_text)}")
                else:
                    raise BrokerError(f"lost the AMQP connection while inspecting queue {vhost}/{name}: "
                                      f"{self.amqp.failure(reason)}")
        return found

    def settled_counts(self, vhost: str, queue: str) -> tuple[int, int] | None:
        """:meth:`counts`, re-read for up to a second while a consumer shows: this tool's own
        consumer, just cancelled, can still count for a moment (seen with quorum queues and
        streams) before it is taken to be someone else's."""
        counts = self.counts(vhost, queue)
        for _ in range(CONSUMER_SETTLE_STEPS):
            if counts is None or not counts[1]:
                break
            time.sleep(0.1)
            counts = self.counts(vhost, queue)
        return counts

    def stream_has_messages(self, vhost: str, queue: str, wait: float = STREAM_READ_WAIT) -> bool:
        """Whether a stream holds any message: read it from its first offset and see if one
        arrives within ``wait`` seconds. (A passive declare always counts 0 for a stream, and
        the statistics lag behind publishes.)"""
        import pika

        found: list[bool] = []
        channel = None
        try:
            channel = self._connection(vhost).channel()
            channel.basic_qos(prefetch_count=1)
            tag = channel.basic_consume(queue, lambda ch, method, properties, body: found.append(True),
                                        arguments={"x-stream-offset": "first"})
            deadline = time.monotonic() + wait
            while not found and time.monotonic() < deadline:
                channel.connection.process_data_events(time_limit=0.1)
            channel.basic_cancel(tag)
        except pika.exceptions.ChannelClosedByBroker as closed:
            raise BrokerError(f"cannot read stream {vhost}/{queue}: {broker_reply(closed.reply_text)}") from None
        except pika.exceptions.AMQPError as error:
            raise BrokerError(f"lost the AMQP connection while reading stream {vhost}/{queue}: "
                              f"{self.amqp.failure(error)}") from None
        finally:
            _close_channel(channel)  # unacknowledged reads of a stream change nothing in it
        return bool(found)

    def close(self) -> None:
        self._pipelines.clear()
        for connection in self._connections.values():
            _close(connection)
        self._connections.clear()


PIPELINE = 500
"""Passive declares sent on one channel before their answers are read (:meth:`QueueInspector.counts_many`)."""


class _Pipeline:
    """A channel on which passive declares are sent without waiting for each answer. pika sends a
    channel's next request only once the previous one is answered; these go out as frames of their
    own, and their answers are taken as they arrive (in the order sent, as on any channel)."""

    def __init__(self, connection: Any):
        from pika import spec

        self.connection = connection
        self.channel = connection.channel()
        self._impl = self.channel._impl
        self.closed: BaseException | None = None
        """Why the broker closed the channel (a queue that does not exist: 404), once it has."""
        self._answers: list[Any] = []
        self._expected = 0
        self._impl.add_on_close_callback(self._shut)
        connection._impl.callbacks.add(self._impl.channel_number, spec.Queue.DeclareOk, self._answered, one_shot=False)

    def _wake(self) -> None:
        self.connection.call_later(0, lambda: None)  # ends the wait of process_data_events

    def _answered(self, frame: Any) -> None:
        self._answers.append(frame.method)
        if len(self._answers) == self._expected:
            self._wake()

    def _shut(self, _channel: Any, reason: BaseException) -> None:
        self.closed = reason
        self._wake()

    def declare(self, queues: list[str], timeout: float) -> list[Any]:
        """Passive declares of ``queues``; the answers, in order: fewer than ``queues`` when the
        broker closed the channel (:attr:`closed`) on the first one not answered. Raises
        :class:`TimeoutError` after ``timeout`` seconds without every answer."""
        import pika
        from pika import frame, spec

        self._answers, self._expected = [], len(queues)
        connection = self.connection._impl
        if connection.is_closed:
            raise pika.exceptions.ConnectionWrongStateError("the connection had already closed")
        number = self._impl.channel_number
        # one write for the whole batch (a write per frame costs a system call each)
        connection._output_marshaled_frames([b"".join(
            frame.Method(number, spec.Queue.Declare(queue=name, passive=True)).marshal() for name in queues)])
        deadline = time.monotonic() + timeout
        while len(self._answers) < len(queues) and self.closed is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.connection.process_data_events(time_limit=left)
        return self._answers


def _close_channel(channel: Any) -> None:
    try:
        if channel is not None and channel.is_open:
            channel.close()
    except Exception:  # best effort
        pass


def _close(connection: Any) -> None:
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # closing is best effort
        pass


# -- the apply lock --------------------------------------------------------------

LOCK_QUEUE = "topology.apply-lock"
"""The broker-wide lock queue that versions before per-vhost locks hold for a whole apply: never
taken any more, but checked (an older version's apply still running makes this one wait)."""
VHOST_LOCK_PREFIX = "topology.apply-lock.vhost:"
CLUSTER_LOCK_QUEUE = "topology.apply-lock.cluster"
HOLDER_ARGUMENT = "topology-holder"
"""Argument of the lock queue that says who holds it (read by the runs that wait)."""
WAIT_NOTICE_EVERY = 10.0
"""Seconds between the lines that say an apply still waits for a lock."""


def lock_queue(key: LockKey) -> str:
    """The queue that is the lock ``key``: ``topology.apply-lock.vhost:<vhost>``, or
    ``topology.apply-lock.cluster``. A vhost name that is not all printable ASCII, or that would
    make the name longer than a queue name may be, is shown cut with ``?`` for each other
    character, followed by ``~`` and a hash of the whole name (two names sharing a lock queue would
    only make their applies take turns). ASCII because RabbitMQ 4 cuts the text of its "locked
    queue" refusal to 255 characters, not bytes: with a name of multi-byte characters that text
    no longer fits its frame, and the broker drops the whole connection instead of refusing."""
    if key.cluster:
        return CLUSTER_LOCK_QUEUE
    name = VHOST_LOCK_PREFIX + key.vhost
    if key.vhost.isascii() and key.vhost.isprintable() and len(name) <= MAX_QUEUE_NAME_BYTES:
        return name
    digest = "~" + hashlib.sha256(key.vhost.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    room = MAX_QUEUE_NAME_BYTES - len(VHOST_LOCK_PREFIX + digest)
    shown = "".join(c if c.isascii() and c.isprintable() else "?" for c in key.vhost[:room])
    return VHOST_LOCK_PREFIX + shown + digest


def holder_identity() -> dict[str, Any]:
    """Who is applying: host, process id, operating-system user and start time."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": user,
        "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def describe_holder(identity: dict[str, Any]) -> str:
    return f"{identity.get('user')}@{identity.get('host')} (pid {identity.get('pid')}, since {identity.get('since')})"


class _Request:
    """A declare (or, ``delete``, the deletion of a lock held) for the holding thread to make (only
    that thread uses the connection)."""

    def __init__(self, queue: str, passive: bool, delete: bool = False):
        self.queue = queue
        self.passive = passive
        self.delete = delete
        self.outcome: str | None = None
        """``taken`` (ours now), ``held`` (another connection's), ``free`` (a passive declare found
        none, or a lock of ours was deleted)."""
        self.error: BaseException | None = None
        self.done = threading.Event()


class ApplyLock:
    """The locks of one apply (see :mod:`topology.locks`): a set of exclusive, auto-deleted queues
    in the lock vhost, one per key, all held by one connection of its own, served by a background
    thread (so heartbeats flow while apply works). The broker releases them all when the process
    dies or the connection drops, and :meth:`check` then fails.

    ``whois(vhost, queue)`` returns a lock queue's arguments, so a refused or waiting run can say
    who holds the lock; it may return ``None`` when that cannot be read. ``on_wait(line)`` is told,
    when a wait starts and every :data:`WAIT_NOTICE_EVERY` seconds after, what is waited for."""

    def __init__(self, amqp: Amqp, whois: Callable[[str, str], dict[str, Any] | None] | None = None,
                 on_wait: Callable[[str], None] | None = None, on_stale: Callable[[], None] | None = None):
        self.amqp = amqp
        self.whois = whois
        self.on_wait = on_wait
        self.on_stale = on_stale
        """Called when what was read under the locks may be stale: they were given up, or an apply
        of an older version held its broker-wide lock while they were held."""
        self.identity = holder_identity()
        self._held: set[LockKey] = set()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lost: str | None = None
        self._connection: Any = None
        """The holding connection, once open (to wake its thread)."""

    @property
    def held(self) -> frozenset[LockKey]:
        """The keys held now."""
        return frozenset(self._held)

    def open(self) -> None:
        """Start connecting in the background (an apply does it while its files load)."""
        if self._thread is not None:
            return
        importlib.import_module("pika")  # here: imported by the holding thread, it would fight the loading for the GIL
        # each connection's own stop and requests: a thread of an earlier one still ending never takes them
        self._stop, self._requests = threading.Event(), queue.SimpleQueue()
        self._ready.clear()
        self._error, self._lost = None, None
        self._thread = threading.Thread(target=self._serve, args=(self._stop, self._requests),
                                        name="topology-apply-lock", daemon=True)
        self._thread.start()

    def acquire(self, keys: Iterable[LockKey], timeout: float = 0.0) -> None:
        """Take the locks ``keys`` not yet held, in lock order, waiting up to ``timeout`` seconds in
        all; raise :class:`LockHeld` if another run keeps one (or an apply of an older version holds
        its broker-wide lock, which is checked, never taken)."""
        deadline = time.monotonic() + timeout
        self.open()
        keys = set(keys)
        missing = sorted(keys - self._held)
        if self._held and missing and missing[0] < max(self._held) and not all(map(self.try_take, missing)):
            # keys taken early, out of lock order (try_take), and one sorting before them is held
            # elsewhere: waiting for it while holding them could wait forever, so give them up and
            # take the whole set in order
            keys |= self._held
            self._give_up()
        contended: list[LockKey] = []
        for key in sorted(keys - self._held):
            self._wait(lock_queue(key), key.title, False, deadline, timeout, contended, key)
            self._held.add(key)
        if self._wait(LOCK_QUEUE, "the whole broker (an apply of an older topology version)", True, deadline, timeout,
                      contended, None) and self.on_stale is not None:
            self.on_stale()  # what was read while the older apply held it (after a try_take) is read again

    def _give_up(self) -> None:
        """Delete every lock queue held, keeping the connection: once each deletion is answered,
        another run may take it (a closed connection's exclusive queues may outlive it for a moment
        on RabbitMQ 4, and this run would then find its own lock held)."""
        for key in sorted(self._held, reverse=True):
            self._ask(lock_queue(key), False, delete=True)
            self._held.discard(key)
        if self.on_stale is not None:
            self.on_stale()

    def try_take(self, key: LockKey) -> bool:
        """Take ``key`` now if it is free, never waiting, in any order: an apply takes the lock of
        each vhost as its files name it, so that the vhost is read while the rest loads. True when
        it is held now; False when another run holds it, an apply of an older version holds its
        broker-wide lock, or the connection failed (:meth:`acquire` then waits, in lock order, or
        says what failed). Called by one thread at a time, never beside :meth:`acquire`."""
        if key in self._held:
            return True
        if self._thread is None:  # not opened, or given up
            return False
        self._ready.wait()
        if self._error is not None:
            return False
        try:
            # an older version takes no vhost lock: its broker-wide one is checked before each read
            if self._ask(LOCK_QUEUE, True) == "held" or self._ask(lock_queue(key), False) != "taken":
                return False
        except BrokerError:
            return False
        self._held.add(key)
        return True

    def _wait(self, name: str, what: str, passive: bool, deadline: float, timeout: float,
              contended: list[LockKey], key: LockKey | None) -> bool:
        """Declare (or, ``passive``, look for) the lock queue ``name`` until it is free or the
        deadline passes, telling :attr:`on_wait` as it goes; whether it had to wait."""
        started = time.monotonic()
        told = None
        waited = False
        while self._ask(name, passive) == "held":
            waited = True
            if key is not None and key not in contended:
                contended.append(key)
            now = time.monotonic()
            if now >= deadline:
                raise LockHeld(self._refusal(name, what, timeout, contended, key))
            if self.on_wait is not None and (told is None or now - told >= WAIT_NOTICE_EVERY - 0.5):
                holder = self._holder(name)
                if told is None:
                    self.on_wait(f"waiting for the apply lock of {what} on {self.amqp.display}, held by {holder} "
                                 f"(up to {deadline - now:.0f} s more, --lock-timeout)")
                else:
                    self.on_wait(f"still waiting for the apply lock of {what} ({now - started:.0f} s so far, "
                                 f"up to {deadline - now:.0f} s more), held by {holder}")
                told = now
            time.sleep(min(1.0, max(0.0, deadline - now)))
        return waited

    def _refusal(self, name: str, what: str, timeout: float, contended: list[LockKey], key: LockKey | None) -> str:
        waited = f" after waiting {timeout:g}s" if timeout else ""
        also = [k for k in contended if k != key]
        others = f" (waited before for {describe_keys(also)})" if also else ""
        return (f"the apply lock of {what} on {self.amqp.display} (queue {name!r} in vhost {self.amqp.lock_vhost!r}) "
                f"is held by {self._holder(name)}{waited}{others}: another apply is running; retry when it ends, "
                "or wait for it with --lock-timeout SECONDS")

    def _holder(self, name: str) -> str:
        arguments = None
        if self.whois is not None:
            try:
                arguments = self.whois(self.amqp.lock_vhost, name)
            except BrokerError:
                arguments = None
        holder = (arguments or {}).get(HOLDER_ARGUMENT)
        if isinstance(holder, dict):
            return describe_holder(holder)
        return "another connection (its details cannot be read)"

    def _ask(self, name: str, passive: bool, delete: bool = False) -> str:
        """Have the holding thread declare ``name`` (or delete it); its outcome (``taken``, ``held``,
        ``free``)."""
        self._ready.wait()
        if self._error is not None:
            error, self._thread = self._error, None
            raise error
        request = _Request(name, passive, delete)
        self._requests.put(request)
        connection = self._connection
        try:
            connection.add_callback_threadsafe(lambda: None)  # wake the thread now
        except Exception:  # closed: the thread fails the request as it ends
            pass
        while not request.done.wait(0.25):
            if self._thread is None or not self._thread.is_alive():
                break
        if request.error is not None:
            raise request.error
        if request.outcome is None:
            self.check()
            raise BrokerError("cannot take the apply lock: its AMQP connection closed")
        return request.outcome

    def _serve(self, stop: threading.Event, requests: queue.SimpleQueue[_Request]) -> None:
        try:
            connection = self.amqp.connect(self.amqp.lock_vhost, "topology apply lock", {"topology": self.identity})
        except BaseException as error:
            why = connect_failure(error, self.amqp.timeout, url=self.amqp.display, ca=self.amqp.ca)
            self._error = error if isinstance(error, BrokerError) else BrokerError(f"cannot take the apply lock: {why}")
            if isinstance(error, NoVhostAccess):
                self._error = BrokerError(
                    f"{error}, where the apply lock is kept: give the user access to it, or put a vhost it may use "
                    "in the path of --amqp-url (every apply to this broker must keep its lock in the same vhost)")
            self._ready.set()
            return
        if stop is self._stop:
            self._connection = connection
        self._ready.set()
        try:
            while not stop.is_set():
                connection.process_data_events(time_limit=0.25)
                while not stop.is_set():
                    try:
                        request = requests.get_nowait()
                    except queue.Empty:
                        break
                    self._declare(connection, request)
        except Exception as error:  # the connection dropped: the broker has released every lock
            if stop is self._stop:
                self._lost = self.amqp.failure(error)
        finally:
            while True:  # a request left unanswered would keep acquire() waiting
                try:
                    requests.get_nowait().done.set()
                except queue.Empty:
                    break
            _close(connection)

    def _declare(self, connection: Any, request: _Request) -> None:
        import pika

        channel = None
        try:
            channel = connection.channel()
            if request.delete:
                channel.queue_delete(request.queue)
                request.outcome = "free"
            elif request.passive:
                channel.queue_declare(request.queue, passive=True)
                request.outcome = "free"  # there, but no other connection's own: no apply holds it
            else:
                channel.queue_declare(request.queue, exclusive=True, auto_delete=True,
                                      arguments={HOLDER_ARGUMENT: self.identity})
                request.outcome = "taken"
            _close_channel(channel)
        except pika.exceptions.ChannelClosedByBroker as closed:
            if closed.reply_code == 405:  # RESOURCE_LOCKED: another connection holds it
                request.outcome = "held"
            elif closed.reply_code == 404 and request.passive:
                request.outcome = "free"
            else:
                request.error = BrokerError(f"cannot take the apply lock: {broker_reply(closed.reply_text)}")
        finally:
            request.done.set()

    def check(self) -> None:
        """Raise :class:`BrokerError` if the locks were lost (their connection dropped)."""
        thread = self._thread
        if self._lost is not None or (thread is not None and not thread.is_alive() and not self._stop.is_set()):
            why = self._lost or "its AMQP connection closed"
            raise BrokerError(f"lost the apply lock on {self.amqp.display}: {why}; stopped")

    def release(self) -> None:
        """Give up every lock held (the connection closes); :meth:`acquire` may take them again."""
        self._stop.set()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:  # wake the holding thread now rather than at its next quarter second
                connection.add_callback_threadsafe(lambda: None)
            except Exception:  # already closed: the thread ends by itself
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._held.clear()
        if self.on_stale is not None:
            self.on_stale()


# -- moving messages -------------------------------------------------------------

STASH_HEADER = "x-topology-migrate"
"""Header that carries a transient message's own delivery mode while it waits in a
temporary queue as a persistent message; removed when it is moved back. Its value names the
migration (its random ``token``): a header of that name that a publisher wrote is never taken
for this tool's, and comes back as it was."""

_PROPERTIES = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id", "reply_to",
    "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id",
)


def stash(properties: Any, token: str = "") -> Any:
    """The properties to publish a message with into the temporary queue of migration ``token``:
    persistent, with its own delivery mode (and whether it had headers, and its own header of
    this name, if a publisher wrote one) kept in a header."""
    import pika

    values = {name: getattr(properties, name) for name in _PROPERTIES}
    own = values["headers"] if isinstance(values["headers"], dict) else {}
    if values["delivery_mode"] == 2 and STASH_HEADER not in own:
        return properties
    headers = dict(own)
    saved: dict[str, Any] = {"token": token, "delivery-mode": values["delivery_mode"] or 0,
                             "headers": values["headers"] is not None}
    if STASH_HEADER in own:
        saved["own"] = own[STASH_HEADER]
    headers[STASH_HEADER] = saved
    values.update(headers=headers, delivery_mode=2)
    return pika.BasicProperties(**values)


def unstash(properties: Any, token: str = "") -> Any:
    """The message's own properties again (the inverse of :func:`stash` with the same ``token``);
    a message that this migration did not stash is left as it is."""
    import pika

    headers = properties.headers
    saved = headers.get(STASH_HEADER) if isinstance(headers, dict) else None
    if not isinstance(saved, dict) or saved.get("token", "") != token:
        return properties
    values = {name: getattr(properties, name) for name in _PROPERTIES}
    kept = dict(headers)
    kept.pop(STASH_HEADER)
    if "own" in saved:
        kept[STASH_HEADER] = saved["own"]
    values["delivery_mode"] = saved.get("delivery-mode") or None
    values["headers"] = kept if (kept or saved.get("headers", True)) else None
    return pika.BasicProperties(**values)


SEAL_HEADER = "x-topology-seal"
"""Header of the message this tool puts into a quorum queue it is about to delete, to
keep the queue non-empty (and so refusing publishes) until the delete; its value names
the queue (:func:`seal_value`), and such a message is dropped rather than moved."""


def seal_value(vhost: str, queue: str, token: str = "") -> str:
    """The seal header's value for migration ``token`` (a random value kept in its record): no
    publisher can write it beforehand, so no message of theirs is ever taken for a seal."""
    return f"topology migration of {vhost}/{queue}" + (f" {token}" if token else "")


def is_seal(properties: Any, vhost: str, queue: str, token: str = "") -> bool:
    headers = properties.headers
    return isinstance(headers, dict) and headers.get(SEAL_HEADER) == seal_value(vhost, queue, token)


class MessageMover(QueueInspector):
    """Moves every message of one queue to another queue of the same vhost.

    Each message is published to the destination through the default exchange with
    the mandatory flag and a publisher confirm, and only then acked at the source. A
    crash at any point leaves every message in at least one of the two queues (a
    message confirmed but not yet acked is in both: a duplicate, never a loss).
    Being a :class:`QueueInspector`, it also counts exactly.

    ``guard`` (the apply lock's :meth:`ApplyLock.check`) is called before every round: once
    it raises, the mover stops there, with nothing delivered to it and not acked. (Stopping
    within a round would hand deliveries back, which a quorum queue puts behind the others.)
    It consumes as the queue's only consumer: exclusively (which classic queues enforce), and
    it stops when a round's count shows another consumer (quorum queues ignore ``exclusive``)."""

    PREFETCH = 100
    """Messages per round: a kill leaves at most this many messages in both queues (moved,
    not yet acked), duplicates that the next run moves with the rest; and a quorum queue
    puts those it gets back behind the others."""
    QUIET = 1.0
    IDLE_ROUNDS = 5

    def __init__(self, amqp: Amqp, guard: Callable[[], None] | None = None):
        super().__init__(amqp)
        self.guard = guard

    def move(
        self,
        vhost: str,
        source: str,
        destination: str,
        transform: Callable[[Any], Any] = lambda properties: properties,
    ) -> int:
        """Move messages until ``source`` is seen empty; return how many were moved.
        ``transform`` gives the properties to publish with, or ``None`` to drop the
        message (only this tool's own seal messages, see :func:`is_seal`)."""
        return self._move(vhost, source, destination, transform)[0]

    def drain_and_delete(self, vhost: str, source: str, destination: str, transform: Callable[[Any], Any],
                         attempts: int) -> tuple[int, bool]:
        """Move messages, then delete ``source`` only if it is empty and unused (the broker
        checks, atomically), at most ``attempts`` times; (moved, deleted).

        The broker confirms a message that was on its way to a queue when the queue was
        deleted, and drops it. So the queue must have stayed empty for :attr:`QUIET`
        seconds (no one publishing straight to it) before the delete, which goes out on
        the channel whose count just saw it empty."""
        moved, _, deleted = self._move(vhost, source, destination, transform, delete_attempts=attempts)
        return moved, deleted

    def take(self, vhost: str, source: str, destination: str, transform: Callable[[Any], Any], limit: int) -> tuple[int, int]:
        """Move at most ``limit`` messages, from the head of ``source``; (moved, dropped)."""
        moved, dropped, _ = self._move(vhost, source, destination, transform, limit=limit)
        return moved, dropped

    def _move(self, vhost: str, source: str, destination: str, transform: Callable[[Any], Any],
              limit: int | None = None, delete_attempts: int = 0) -> tuple[int, int, bool]:
        import pika

        consume = publish = None
        moved = dropped = tried = idle = 0
        quiet = False
        try:
            connection = self._connection(vhost)
            publish = connection.channel()
            publish.confirm_delivery()
            while True:
                stopped = self._stopped()
                if stopped is not None:  # between rounds: nothing delivered and not yet acked
                    raise BrokerError(f"{stopped}; every message is in {source!r} or {destination!r}, "
                                      "and the next run finishes the migration")
                if consume is None or not consume.is_open:
                    consume = connection.channel()
                counted = consume.queue_declare(source, passive=True).method
                remaining = counted.message_count
                if counted.consumer_count:
                    self._alone(vhost, source, destination)
                if limit is not None:
                    remaining = min(remaining, limit - moved - dropped)
                # Rounds of at most PREFETCH messages, each delivered exactly: none is
                # acked before the consumer is cancelled, so the broker never hands out
                # more than asked for. No delivery is then still on its way when the
                # queue is next counted (or deleted only-if-empty, which does not see
                # unacknowledged messages), and a limited take leaves the rest ready.
                remaining = min(remaining, self.PREFETCH)
                if remaining > 0:
                    consume.basic_qos(prefetch_count=remaining)
                if remaining <= 0 and delete_attempts and not quiet:
                    # seen empty: count again after a quiet time, during which no message
                    # may arrive (a steady publisher straight to the queue stops us)
                    if tried >= delete_attempts:
                        return moved, dropped, False
                    tried += 1
                    time.sleep(self.QUIET)
                    quiet = True
                    continue
                if remaining <= 0 and delete_attempts:
                    quiet = False
                    try:
                        consume.queue_delete(source, if_unused=True, if_empty=True)
                        return moved, dropped, True
                    except pika.exceptions.ChannelClosedByBroker as closed:
                        if closed.reply_code == 404:
                            return moved, dropped, True
                        if closed.reply_code != 406:  # 406: a message or a consumer came meanwhile
                            raise BrokerError(f"cannot delete queue {vhost}/{source}: {broker_reply(closed.reply_text)}") from None
                        continue
                quiet = False
                if remaining <= 0:
                    return moved, dropped, False
                if idle >= self.IDLE_ROUNDS:
                    raise BrokerError(
                        f"queue {vhost}/{source} counts {remaining} message(s) but delivers none to this tool "
                        "(another consumer may hold them); stopped, every message is still in "
                        f"{source!r} or {destination!r}"
                    )
                taken, last = 0, None
                # take what the count promised, then count again (publishers may add more)
                deliveries = consume.consume(source, auto_ack=False, exclusive=True, inactivity_timeout=1.0)
                for method, properties, body in deliveries:
                    if method is None:
                        break
                    properties = transform(properties)
                    if properties is None:
                        dropped += 1
                    else:
                        publish.basic_publish("", destination, body, properties, mandatory=True)
                        moved += 1
                    last = method.delivery_tag
                    taken += 1
                    if taken >= remaining:
                        break
                consume.cancel()
                if last is not None:
                    consume.basic_ack(last, multiple=True)
                idle = 0 if taken else idle + 1
        except pika.exceptions.UnroutableError:
            raise BrokerError(f"queue {vhost}/{destination} does not exist, so a message could not be moved into it") from None
        except pika.exceptions.NackError:
            raise BrokerError(f"queue {vhost}/{destination} refused a message (publisher nack)") from None
        except pika.exceptions.ChannelClosedByBroker as closed:
            if closed.reply_code == 403 and "exclusive" in str(closed.reply_text):
                self._alone(vhost, source, destination)  # raises while that consumer is there
                raise BrokerError(f"another client consumed from {vhost}/{source} for a moment; stopped, every "
                                  f"message is in {source!r} or {destination!r}: re-run") from None
            raise BrokerError(f"the broker stopped moving messages from {vhost}/{source}: "
                              f"{broker_reply(closed.reply_text)}") from None
        except pika.exceptions.AMQPError as error:
            raise BrokerError(
                f"lost the AMQP connection while moving messages from {vhost}/{source} "
                f"({self.amqp.failure(error)}); every message is still in {source!r} or {destination!r}"
            ) from None
        finally:
            _close_channel(consume)  # unacked messages return to the source
            _close_channel(publish)

    def _alone(self, vhost: str, source: str, destination: str) -> None:
        """Raise unless the consumer the count shows is this mover's own, just cancelled (a quorum
        queue may count it for a moment). Quorum queues do not enforce an exclusive consumer, so a
        consumer that attached meanwhile is found here."""
        counts = self.settled_counts(vhost, source)
        if counts is not None and counts[1]:
            raise BrokerError(
                f"another client consumes from {vhost}/{source} (an application, or another apply that lost "
                f"the apply lock); stopped, every message is in {source!r} or {destination!r}: stop that "
                "consumer and re-run"
            )

    def _stopped(self) -> BrokerError | None:
        """Why moving must stop now (the guard's error), or ``None``."""
        if self.guard is None:
            return None
        try:
            self.guard()
        except BrokerError as error:
            return error
        return None

    def offer(self, vhost: str, queue: str, token: str = "") -> bool:
        """Publish a seal message of migration ``token`` to ``queue`` on a new channel; whether the
        broker took it (confirmed), as opposed to refusing it (nack) or finding no such queue."""
        import pika

        if self.guard is not None:
            self.guard()
        channel = None
        try:
            channel = self._connection(vhost).channel()
            channel.confirm_delivery()
            channel.basic_publish("", queue, b"", pika.BasicProperties(headers={SEAL_HEADER: seal_value(vhost, queue, token)}),
                                  mandatory=True)
            return True
        except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
            return False
        except pika.exceptions.AMQPError as error:
            raise BrokerError(f"lost the AMQP connection while sealing queue {vhost}/{queue}: "
                              f"{self.amqp.failure(error)}") from None
        finally:
            _close_channel(channel)


QUIET = 0.5
"""Seconds without a delivery after which every published test message has arrived."""


def observe_routing(amqp: Amqp, vhost: str, queues: dict[str, str], messages: list[tuple[str, str, dict[str, Any]]],
                    timeout: float = 10.0) -> list[set[str] | str]:
    """Publish each message (exchange, routing key, headers) into ``vhost`` and say which of
    ``queues`` (name → type) received it: a consumer waits on every queue first, so that a
    message a queue would drop at once (a TTL of 0, a length of 0) still counts as delivered.
    ``"refused"`` for a publish the broker refused (the channel closed on it: 403 or 406),
    ``"nacked"`` for one it did not confirm (a queue refused it: ``overflow: reject-publish``)."""
    import pika

    connection = amqp.connect(vhost, "topology test --live")
    received: list[set[str] | str] = [set() for _ in messages]
    last = [time.monotonic()]
    try:
        listening = connection.channel()
        listening.basic_qos(prefetch_count=1000)

        def on_message(queue: str) -> Any:
            def handle(channel: Any, method: Any, properties: Any, body: bytes) -> None:
                channel.basic_ack(method.delivery_tag)
                tag = properties.message_id if properties else None
                index = int(tag[len("topology-test-"):]) if isinstance(tag, str) and tag.startswith("topology-test-") \
                    and tag[len("topology-test-"):].isdigit() else -1
                if 0 <= index < len(received) and isinstance(received[index], set):
                    received[index].add(queue)  # type: ignore[union-attr]
                    last[0] = time.monotonic()
            return handle

        for name, kind in sorted(queues.items()):
            arguments = {"x-stream-offset": "next"} if kind == "stream" else None
            listening.basic_consume(name, on_message(name), arguments=arguments)
        publishing = connection.channel()
        publishing.confirm_delivery()
        for index, (exchange, routing_key, headers) in enumerate(messages):
            properties = pika.BasicProperties(headers=headers or None, message_id=f"topology-test-{index}")
            try:
                publishing.basic_publish(exchange, routing_key, b"topology test", properties, mandatory=True)
            except pika.exceptions.UnroutableError:
                pass  # returned: it reached no queue
            except pika.exceptions.NackError:
                received[index] = "nacked"
            except pika.exceptions.ChannelClosedByBroker as closed:
                if closed.reply_code not in (403, 406):
                    raise BrokerError(f"the broker refused test message {index + 1}: "
                                      f"{broker_reply(closed.reply_text)}") from None
                received[index] = "refused"
                publishing = connection.channel()
                publishing.confirm_delivery()
        last[0] = time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() - last[0] < QUIET and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
        return received
    except pika.exceptions.AMQPError as error:
        raise BrokerError(f"lost the AMQP connection while running the tests in {vhost}: {amqp.failure(error)}") from None
    finally:
        _close(connection)
