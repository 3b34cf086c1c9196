"""The only code that speaks AMQP (pika).

Apply uses it to learn, at the last moment and exactly, whether a queue holds
messages or has consumers before it deletes it: the management statistics lag by
seconds, and quorum queues refuse the broker-side ``if-empty`` check.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from topology.errors import BrokerError

logging.getLogger("pika").setLevel(logging.CRITICAL)  # pika logs tracebacks for refused connections


def default_amqp_url(management_url: str) -> str:
    """The AMQP URL of the broker behind ``management_url``: same host, port 5672 (5671 for https)."""
    parts = urlsplit(management_url)
    scheme, port = ("amqps", 5671) if parts.scheme == "https" else ("amqp", 5672)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


class QueueInspector:
    """Exact message and consumer counts through passive declares, one connection per vhost."""

    def __init__(self, amqp_url: str, user: str, password: str, timeout: float = 10.0):
        try:
            parts = urlsplit(amqp_url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise BrokerError("invalid AMQP URL: expected amqp://[user:password@]host:port")
        self.host = parts.hostname
        self.port = port or (5671 if parts.scheme == "amqps" else 5672)
        self.tls = parts.scheme == "amqps"
        self.user = unquote(parts.username) if parts.username else user
        self.password = unquote(parts.password) if parts.password else password
        self.timeout = timeout
        self.display = f"{parts.scheme}://{self.host}:{self.port}"
        self._connections: dict[str, Any] = {}

    def _connection(self, vhost: str) -> Any:
        import pika

        connection = self._connections.get(vhost)
        if connection is not None and connection.is_open:
            return connection
        params = pika.ConnectionParameters(
            host=self.host,
            port=self.port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(self.user, self.password),
            socket_timeout=self.timeout,
            blocked_connection_timeout=self.timeout,
            connection_attempts=1,
            ssl_options=pika.SSLOptions(__import__("ssl").create_default_context()) if self.tls else None,
            client_properties={"connection_name": "topology apply"},
        )
        try:
            connection = pika.BlockingConnection(params)
        except pika.exceptions.ProbableAuthenticationError:
            raise BrokerError(f"the broker at {self.display} refused the AMQP credentials of user {self.user!r}") from None
        except pika.exceptions.ProbableAccessDeniedError:
            raise BrokerError(f"user {self.user!r} has no access to vhost {vhost!r} over AMQP at {self.display}") from None
        except pika.exceptions.AMQPError as error:
            raise BrokerError(f"cannot connect to AMQP at {self.display}: {type(error).__name__} {error}".strip()) from None
        self._connections[vhost] = connection
        return connection

    def counts(self, vhost: str, queue: str) -> tuple[int, int] | None:
        """(ready messages, consumers) of the queue, or ``None`` when it does not exist."""
        import pika

        channel = self._connection(vhost).channel()
        try:
            frame = channel.queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as closed:
            if closed.reply_code == 404:
                return None
            raise BrokerError(f"cannot inspect queue {vhost}/{queue}: {closed.reply_text}") from None
        channel.close()
        return frame.method.message_count, frame.method.consumer_count

    def close(self) -> None:
        for connection in self._connections.values():
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # closing is best effort
                pass
        self._connections.clear()
