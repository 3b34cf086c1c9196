"""What the AMQP side says when a connection, a channel, TLS or a TLS file fails: words a user can
act on, never a pika class name, a Python exception, OpenSSL's tokens or a ``_ssl.c`` place. The
pika and ssl exceptions are built here as the libraries build them; no broker is needed."""

from __future__ import annotations

import re
import ssl

import pika.exceptions as amqp
import pytest

from topology.broker.amqp import CONNECTION_DROPPED, Amqp, amqp_failure, broker_reply, connect_failure, ssl_context
from topology.errors import BrokerError

INTERNAL = re.compile(r"[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Lost|Timeout|Broker|Exception)\b|_ssl\.c|\[SSL|\[X509|"
                      r"PEM lib|CONNECTION_FORCED|NOT_FOUND|PRECONDITION_FAILED|\(\d+, '")
"""What must never show: a class name (StreamLostError, ConnectionClosedByBroker...), the TLS
library's own text, a reply-code name, a raw exception repr."""


def words(text: str) -> str:
    assert text and "\n" not in text
    assert not INTERNAL.search(text), text
    return text


def tls_error(text: str, reason: str | None, kind: type[ssl.SSLError] = ssl.SSLError) -> ssl.SSLError:
    """An ``ssl.SSLError`` as the ssl module raises it: the C code sets ``reason`` and ``library``
    (one made in Python has neither until they are set)."""
    error = kind(1, text)
    if reason is not None:
        error.reason = reason
        error.library = "SSL"
    return error


@pytest.mark.parametrize("error", [
    amqp.StreamLostError("Transport indicated EOF"),
    amqp.StreamLostError("Stream connection lost: ConnectionResetError(104, 'Connection reset by peer')"),
    amqp.AMQPHeartbeatTimeout("No activity or too many missed heartbeats in the last 60 seconds"),
    ConnectionResetError(104, "Connection reset by peer"),
    amqp.AMQPConnectionError(ConnectionResetError(104, "Connection reset by peer")),
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)"),
])
def test_a_dropped_connection_is_said_in_words(error):
    assert words(amqp_failure(error)) == CONNECTION_DROPPED == \
        "the connection dropped (the broker restarted, or the network cut it)"


def test_a_connection_the_broker_closed_says_why_without_its_reply_code_name():
    error = amqp.ConnectionClosedByBroker(320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
    assert words(amqp_failure(error)) == \
        "the broker closed the connection: broker forced connection closure with reason 'shutdown'"


def test_a_channel_the_broker_closed_says_why_without_its_reply_code_name():
    error = amqp.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'a'")
    assert words(amqp_failure(error)) == "the broker closed the channel: inequivalent arg 'durable' for queue 'a'"


@pytest.mark.parametrize("error, expected", [
    (amqp.ChannelWrongStateError("Channel is closed."), "the channel had already closed"),
    (amqp.ConnectionWrongStateError("Connection is closed."), "the connection had already closed"),
    (amqp.ConnectionClosedByClient(200, "Normal shutdown"), "the connection was closed: Normal shutdown"),
    (amqp.AMQPError("something new"), "the connection failed"),
    (RuntimeError("anything else"), "the connection failed"),
])
def test_other_failures_of_an_open_connection_are_words_too(error, expected):
    assert words(amqp_failure(error)).startswith(expected)


@pytest.mark.parametrize("text, shown", [
    ("NOT_FOUND - no queue 'a' in vhost 'shop'", "no queue 'a' in vhost 'shop'"),
    ("ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'bob'",
     "access to queue 'q' in vhost '/' refused for user 'bob'"),
    ("a reply without a code name - kept whole", "a reply without a code name - kept whole"),
    ("OK - the dash of a short word stays", "OK - the dash of a short word stays"),
    ("", "no reason given"),
])
def test_broker_replies_lose_the_reply_code_name(text, shown):
    assert broker_reply(text) == shown


@pytest.mark.parametrize("reason", ["WRONG_VERSION_NUMBER", None])
def test_tls_to_a_plain_port_says_the_port_does_not_speak_tls(reason):
    error = tls_error("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", reason)
    for said in (connect_failure(error, 10.0, url="amqps://127.0.0.1:5672"),
                 amqp_failure(error, url="amqps://127.0.0.1:5672")):
        assert words(said) == "that port does not speak TLS (use amqp:// for a plain AMQP port such as 5672)"


def test_an_untrusted_broker_certificate_names_the_ca_setting():
    error = tls_error("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
                      "certificate chain (_ssl.c:1006)", "CERTIFICATE_VERIFY_FAILED", ssl.SSLCertVerificationError)
    error.verify_message = "self-signed certificate in certificate chain"
    said = words(connect_failure(error, 10.0, url="amqps://rabbit.example:5671", ca="certs/ca.pem"))
    assert "not trusted" in said and "certs/ca.pem" in said and "tls.ca" in said
    assert "this machine's CA" in words(connect_failure(error, 10.0, url="amqps://rabbit.example:5671"))


def test_another_tls_failure_gives_the_reason_word_and_no_ssl_c_place():
    error = tls_error("[SSL: SOMETHING_ODD] something odd (_ssl.c:2580)", "SOMETHING_ODD")
    said = words(connect_failure(error, 10.0, url="amqps://rabbit.example:5671"))
    assert "TLS handshake" in said and "SOMETHING_ODD" in said


def test_connecting_failures_keep_their_words():
    import socket

    assert connect_failure(socket.gaierror(-2, "Name or service not known"), 5.0) == "the host name is not known"
    assert connect_failure(amqp.AMQPConnectionError(ConnectionRefusedError(111, "Connection refused")), 5.0) == \
        "the connection was refused, or the host cannot be reached"
    assert connect_failure(amqp.AMQPConnectionError(OSError(101, "Network is unreachable")), 5.0) == \
        "network is unreachable"


# -- the TLS files -----------------------------------------------------------------


def test_a_ca_file_that_is_not_pem_is_named(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("garbage\n")
    with pytest.raises(BrokerError) as raised:
        ssl_context(str(ca))
    assert words(str(raised.value)) == f"cannot set up TLS for AMQP: the CA file {ca} holds no PEM certificate"


def test_a_missing_ca_file_is_named(tmp_path):
    with pytest.raises(BrokerError) as raised:
        ssl_context(str(tmp_path / "nope.pem"))
    assert words(str(raised.value)) == f"cannot set up TLS for AMQP: the CA file {tmp_path / 'nope.pem'} does not exist"


def test_a_client_certificate_and_key_that_are_not_pem_are_named(tmp_path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("garbage\n")
    key.write_text("garbage\n")
    with pytest.raises(BrokerError) as raised:
        ssl_context(cert=str(cert), key=str(key))
    said = words(str(raised.value))
    assert said.startswith(f"cannot set up TLS for AMQP: the client certificate {cert} and key {key} cannot be used")
    assert "cannot load the TLS files" not in said


def test_a_missing_client_key_is_named(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("garbage\n")
    with pytest.raises(BrokerError) as raised:
        ssl_context(cert=str(cert), key=str(tmp_path / "gone.key"))
    assert words(str(raised.value)) == \
        f"cannot set up TLS for AMQP: the client key file {tmp_path / 'gone.key'} does not exist"


# -- the AMQP URL ------------------------------------------------------------------


@pytest.mark.parametrize("url, problem", [
    ("amqp://someone:hunter22@host:notaport/", "the port must be a number from 1 to 65535"),
    ("amqp://127.0.0.1:99999/", "the port must be a number from 1 to 65535"),
    ("http://someone:hunter22@127.0.0.1:5672/", "it must start with amqp:// or amqps://"),
    ("amqp:///shop", "it names no host"),
    ("amqp://[::1/", "it does not parse as a URL"),
])
def test_an_invalid_amqp_url_is_named_with_its_password_masked(url, problem):
    from topology import redact
    from topology.broker.client import redact_url

    with pytest.raises(BrokerError) as raised:
        Amqp(url, "guest", "guest")
    said = words(str(raised.value))
    assert said == (f"invalid AMQP URL {redact_url(url)!r}: {problem}; expected amqp://host:port/vhost or "
                    "amqps://host:port/vhost")
    assert "hunter22" not in said
    assert redact.redact(said) == said  # nothing in the hint looks like a URL password to mask


def test_an_invalid_amqp_url_through_the_command_line(run, write):
    path = write("vhosts:\n  amqp-url-never-made: {}\n")
    # no broker: the management URL refuses, and the AMQP URL is refused before anything is read
    result = run("apply", path, "--auto-approve", "--url", "http://127.0.0.1:1", "--amqp-url",
                 "amqp://someone:hunter22@host:notaport/")
    assert result.code != 0
    line = result.err.strip().splitlines()[-1]
    assert line == ("error: invalid AMQP URL 'amqp://***@host:notaport/': the port must be a number from 1 to 65535; "
                    "expected amqp://host:port/vhost or amqps://host:port/vhost")
    assert "hunter22" not in result.err + result.out and "Traceback" not in result.err


# -- real TLS handshakes with a throw-away server on 127.0.0.1 ----------------------


class Listener:
    """A TCP server on 127.0.0.1 that serves each connection with ``serve(socket)`` in a thread."""

    def __init__(self, serve):
        import socket
        import threading

        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.serve = serve
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                try:
                    self.serve(connection)
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        import socket

        try:
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the waiting accept(), which close() alone does not
        except OSError:
            pass
        self.socket.close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 'localhost': (cert.pem, key.pem)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate with")
    folder = tmp_path_factory.mktemp("amqp-certs")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem"), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def tls_server(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)

    def serve(connection):
        with context.wrap_socket(connection, server_side=True) as wrapped:
            wrapped.recv(8)  # the client's AMQP header, if the handshake got that far

    return Listener(serve)


def connecting(url: str, **options) -> str:
    with pytest.raises(BrokerError) as raised:
        Amqp(url, "guest", "guest", timeout=5, **options).connect("/", "topology test")
    return str(raised.value)


def test_amqps_to_a_plain_amqp_port_says_it_does_not_speak_tls():
    def serve(connection):
        connection.recv(512)
        connection.sendall(b"AMQP\x00\x00\x09\x01")  # what an AMQP 0-9-1 listener answers to what it cannot read

    with Listener(serve) as server:
        said = connecting(f"amqps://127.0.0.1:{server.port}/")
    assert re.fullmatch(rf"cannot connect to AMQP at amqps://127\.0\.0\.1:{server.port} \(after \d+\.\d s\): that port "
                        r"does not speak TLS \(use amqp:// for a plain AMQP port such as 5672\)", words(said)), said


def test_an_untrusted_broker_certificate_is_said_for_real(certificate):
    with tls_server(certificate) as server:
        said = connecting(f"amqps://localhost:{server.port}/")
        with_ca = connecting(f"amqps://127.0.0.1:{server.port}/", ssl_context=ssl_context(str(certificate[0])))
    assert "the broker's certificate is not trusted by this machine's CA certificates" in words(said)
    assert "tls.ca" in said
    assert "is not for the host name 127.0.0.1" in words(with_ca)


def test_the_ca_file_is_remembered_for_the_trust_message(certificate):
    given = Amqp("amqps://localhost:5671/", "guest", "guest", ssl_context=ssl_context(str(certificate[0])))
    assert given.ca == str(certificate[0])
    assert Amqp("amqps://localhost:5671/", "guest", "guest", ssl_context=ssl_context()).ca is None


def test_no_amqp_message_is_built_from_a_class_name_or_a_raw_broker_reply():
    """A guard on the one module that speaks AMQP: its messages go through :func:`amqp_failure`,
    :func:`connect_failure` and :func:`broker_reply`, never ``type(error).__name__`` or a reply
    text with its code name."""
    from pathlib import Path

    import topology.broker.amqp as module

    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "__name__}" not in source and "__name__ }" not in source
    raw = [line.strip() for line in source.splitlines() if re.search(r"\{[^{}]*reply_text\}", line)
           and "broker_reply(" not in line]
    assert raw == []
