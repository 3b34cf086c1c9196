"""The messages a user gets for a broken project file, plan file or definitions file, for a
management API that answers oddly and for TLS that fails, and for an option out of its range:
one line, in the user's words, naming the file (and line) at fault and what to do; never a
traceback, a Python exception or class name, or the TLS library's or a parser's own text.

TLS is tested for real: a throw-away HTTPS server on 127.0.0.1 with a certificate made for the
test by the openssl command (the tests that need one are skipped without it)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from topology.broker import client as client_module
from topology.broker.client import ManagementClient, RequestRefused
from topology.broker.live import BrokerInfo
from topology.broker.shapes import DEFINITIONS, OVERVIEW, shape_problem
from topology.errors import BrokerError, TopologyError
from topology.export import parse_definitions
from topology.plan import Plan, load_saved_plan, plan_digest, saved_plan
from topology.project import ProjectError, load_project

NEVER = ("Traceback", "Error:", "Error(", "SecurePool", "Max retries", "_ssl.c", "Input should be", "instance of",
         "<stream end>", "codec can't", "(char ", "Expecting ", "KeyError", "TypeError", "ValueError", "<=x",
         "x>=", "[SSL", "[X509", "internal error")
"""Words none of these messages may hold."""


def clean(message: str) -> bool:
    return "\n" not in message.strip() and not [word for word in NEVER if word in message]


# -- the project file (topology.toml) ---------------------------------------------------------


def project(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "topology.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def project_problem(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(project(tmp_path, text))
    message = str(info.value)
    assert clean(message), message
    return message.replace(str(tmp_path) + "/", "")


def test_a_project_file_that_is_not_utf8_names_its_line(tmp_path, run):
    message = project_problem(tmp_path, b'[targets.a]\nurl = "http://h"\nuser = "\xff\xfe"\n')
    assert message == "topology.toml:3: not UTF-8 text (save the project file as UTF-8)"
    result = run("validate", "--project", str(tmp_path / "topology.toml"), "--target", "a")
    assert result.code == 1 and result.err.count("\n") == 1 and "topology.toml:3: not UTF-8 text" in result.err
    assert clean(result.err)


def test_a_byte_order_mark_is_no_problem(tmp_path):
    assert load_project(project(tmp_path, '\ufeff[targets.a]\nurl = "http://h"\n')).target("a").url == "http://h"


@pytest.mark.parametrize("text, said", [
    ('[targets.prod]\nurl = http://x\n',
     'topology.toml:2: invalid TOML at column 7: a value that is not TOML (text needs quotes: url = "http://…"'),
    ('[targets.prod]\nurl "http://x"\n', "topology.toml:2: invalid TOML at column 5: a key without '= value'"),
    ('[targets.prod]\nurl = "http://x"\nurl = "y"\n', "topology.toml:3: invalid TOML at column 10: the key is set twice"),
    ('secrets = ["A"\n[targets.prod]\nurl = "http://x"\n',
     "topology.toml:2: invalid TOML at column 1: an array opened with [ is not closed with ]"),
    ('[targets.a]\nurl = "x"\n[targets.a]\n', "the table [targets.a] is declared twice"),
    ('[targets.a]\nurl = "x" # ok\nuser = "a" "b"\n', "more text after the value: one key = value per line"),
    ('[targets.a\n', "a [table] header is not closed with ]"),
    ('[targets.a]\nurl = "http://x\n', "a quoted text is not closed on its line"),
    ('[targets.a]\nurl = "c:\\x"\n', "a backslash in double quotes: write \\\\ for a backslash, or use single quotes"),
    ('secrets = ["A"', "topology.toml: invalid TOML at the end of the file: an array opened with [ is not closed"),
    ('secrets = ["A",\n', "topology.toml: invalid TOML at the end of the file: the file ends where a value belongs"),
    ("x = " + "[" * 5000 + "\n", "topology.toml: invalid TOML: arrays or tables are nested too deeply"),
])
def test_invalid_toml_is_located_and_said_in_words(tmp_path, text, said):
    message = project_problem(tmp_path, text)
    assert said in message, message
    assert "(at line" not in message and "Invalid" not in message and "Expected" not in message


@pytest.mark.parametrize("text, said", [
    ('[targets.prod]\nurl = "http://x"\ntls = "yes"\n',
     'targets.prod.tls: expected a table (tls = { ca = "certs/ca.pem" }, or a [targets.prod.tls] table), got "yes"'),
    ('[targets]\nprod = "http://x"\n', 'targets.prod: expected a [targets.prod] table with a url, got "http://x"'),
    ('defaults = "x"\n[targets.prod]\nurl = "http://x"\n', 'defaults: expected a [defaults] table, got "x"'),
    ('[defaults]\ntls = 5\n[targets.prod]\nurl = "http://x"\n', "or a [defaults.tls] table), got 5"),
    ("targets = []\n", "targets: expected a table of targets ([targets.NAME] with a url), got an array"),
    ('[targets.prod]\nurl = "http://x"\nfiles = "a.yaml"\n',
     'targets.prod.files: expected an array of paths (files = ["topology/"]), got "a.yaml"'),
    ('[targets.prod]\nurl = "http://x"\nfiles = ["a", 5]\n', "targets.prod.files (item 2): expected a path in quotes, got 5"),
    ('secrets = "A"\n[targets.prod]\nurl = "http://x"\n', 'secrets: expected an array of variable names (secrets = ["NAME"])'),
    ('[targets.prod]\nurl = "http://x"\ntimeout = 0\n', "targets.prod.timeout: must be more than 0 seconds, got 0"),
    ('[targets.prod]\nurl = "http://x"\ntimeout = 5000\n', "targets.prod.timeout: must be at most 3600 seconds, got 5000"),
    ('[targets.prod]\nurl = "http://x"\ntimeout = "30"\n', 'targets.prod.timeout: expected a number of seconds (timeout = 30), got "30"'),
    ('[targets.prod]\nurl = "http://x"\n[targets.prod.tls]\nverify = "no"\n', 'targets.prod.tls.verify: expected true or false, got "no"'),
    ('[targets.prod]\nurl = 5\n', "targets.prod.url: expected text in quotes, got 5"),
    ('[targets.prod]\nurl = 1979-05-27\n', "targets.prod.url: expected text in quotes, got a date or time"),
    ('[targets.prod]\nuser = "x"\n', "targets.prod.url: missing"),
])
def test_project_settings_of_the_wrong_kind_say_what_toml_to_write(tmp_path, text, said):
    message = project_problem(tmp_path, text)
    assert message.startswith("topology.toml: ") and said in message, message
    for internal in ("TlsSettings", "TargetSettings", "_Shared", "dictionary", "valid list", "valid string"):
        assert internal not in message


# -- saved plan files -------------------------------------------------------------------------


def saved(**changed: Any) -> dict[str, Any]:
    """A saved plan (as read back from its file) with ``changed`` keys replaced (``None``: removed), its checksum redone."""
    plan = Plan(changes=(), vhosts=("v",), broker=BrokerInfo("http://b:15672", "3.10.8", "c"))
    document = json.loads(json.dumps(saved_plan(plan)))
    assert load_saved_plan(document, "plan.json") == plan
    for key, value in changed.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    document["digest"] = plan_digest(document)
    return document


@pytest.mark.parametrize("changed, said", [
    ({"changes": [{"kind": "queue"}]}, "(change #1 lacks 'identity')"),
    ({"changes": None}, "(it lacks 'changes')"),
    ({"changes": "x"}, "(its 'changes' is not a list)"),
    ({"broker": "x"}, "(its 'broker' is not an object)"),
    ({"changes": [{"kind": "widget", "identity": {}, "before": None, "after": {}, "action": "create"}]},
     "(change #1 names an unknown kind 'widget')"),
    ({"changes": [{"kind": "queue", "identity": {}, "before": None, "after": None, "action": "frobnicate"}]},
     "(change #1 names an unknown action 'frobnicate')"),
    ({"changes": [{"kind": "queue", "identity": {"vhost": "v", "name": "q"}, "before": None, "after": None,
                   "action": "create"}]}, "(change #1 has neither 'before' nor 'after')"),
    ({"changes": [{"kind": "queue", "identity": {"vhost": "v", "name": "q"}, "before": None,
                   "after": {"colour": "blue"}, "action": "create"}]},
     "(change #1 holds a value of the wrong kind, or a key this version does not know)"),
    ({"changes": [5]}, "(change #1 holds a value of the wrong kind"),
])
def test_a_broken_plan_file_says_what_is_wrong_in_words(changed, said):
    with pytest.raises(TopologyError) as info:
        load_saved_plan(saved(**changed), "plan.json")
    message = str(info.value)
    assert message.startswith("plan.json is not a valid plan file ") and said in message, message
    assert message.endswith(": make the plan again with 'topology plan --out'") and clean(message), message
    assert "string indices" not in message and "unexpected keyword" not in message


def test_a_plan_file_nested_thousands_deep_is_not_json(tmp_path, run):
    path = tmp_path / "plan.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    result = run("apply", "--plan", str(path), "--dry-run")
    assert result.code == 1 and "is not a plan file written by 'topology plan --out' (not JSON)" in result.err
    assert clean(result.err)


def test_a_plan_whose_secret_checks_this_python_cannot_make_says_so_in_words(monkeypatch):
    import hashlib

    from topology import redact

    redact.forget_all()
    try:
        redact.register("s3cr3t", "HOOK_TOKEN")
        document = json.loads(json.dumps(saved_plan(Plan(changes=(), vhosts=("v", "s3cr3t")))))
        assert document["secrets"] == ["HOOK_TOKEN"]
        document["secret_checks"] = {"HOOK_TOKEN": "scrypt$00$00"}
        document["digest"] = plan_digest(document)
        monkeypatch.setenv("HOOK_TOKEN", "s3cr3t")
        monkeypatch.delattr(hashlib, "scrypt", raising=False)
        with pytest.raises(TopologyError) as info:
            load_saved_plan(document, "plan.json")
    finally:
        redact.forget_all()
    assert str(info.value) == ("cannot apply plan.json: the values of its secret variables cannot be checked here "
                               "(this machine's Python has no scrypt, which the plan's secret checks use): make the "
                               "plan again on this machine")
    assert "OpenSSL" not in str(info.value)


# -- definitions files (export --from-definitions) --------------------------------------------


@pytest.mark.parametrize("data, said", [
    (b"\xff\xfe{}", "defs.json:1: not UTF-8 text: is this a RabbitMQ definitions file?"),
    (b'{"vhosts": [\n', "defs.json:2: not JSON: the file ends too early (is it cut short?)"),
    (b'{"vhosts": [],\n}', "defs.json:2: not JSON at column 1: a key in double quotes is expected here"),
    (b'{"vhosts" []}', "defs.json:1: not JSON at column 11: a ':' is missing after a key"),
    (b'{"vhosts": [{"name": "a"} {"name": "b"}]}', "defs.json:1: not JSON at column 27: a ',' is missing"),
    (b'{"vhosts": []} {}', "defs.json:1: not JSON at column 16: more text after the end of the document"),
    (b'{"a": "\\q"}', "defs.json:1: not JSON at column 8: an invalid backslash escape"),
    (b"[]", "defs.json: not a RabbitMQ definitions file (expected a JSON object, got a list)"),
    (b"[" * 100_000, "defs.json: not a RabbitMQ definitions file (a number far too long, or arrays or objects nested"),
    (b'{"n": ' + b"1" * 5000 + b"}", "defs.json: not a RabbitMQ definitions file (a number far too long"),
    (b'{"vhosts": [{"name": 5}], "queues": [{"name": "a", "vhost": 5, "arguments": []}]}',
     "defs.json: vhosts[0].name is a number, not text: is this a RabbitMQ definitions file?"),
    (b'{"vhosts": [{"name": "v"}], "queues": [{"name": "a", "vhost": 5}]}', "queues[0].vhost is a number, not text"),
    (b'{"vhosts": [{"name": "v"}], "queues": [{"vhost": "v"}]}', "defs.json: queues[0].name is missing"),
    (b'{"vhosts": "x"}', "defs.json: vhosts is text, not a list"),
])
def test_a_broken_definitions_file_is_one_clear_line(data, said):
    with pytest.raises(TopologyError) as info:
        parse_definitions(data, "defs.json")
    assert said in str(info.value) and clean(str(info.value)), str(info.value)


def test_export_checks_a_definitions_file_before_reading_it(run, tmp_path):
    for name, data in (("weird.json", '{"vhosts": [{"name": 5}]}'), ("w5.json", '{"queues": [{"vhost": "v"}]}')):
        (tmp_path / name).write_text(data, encoding="utf-8")
        result = run("export", "--from-definitions", str(tmp_path / name), "--out", str(tmp_path / "out"))
        assert result.code == 1 and result.err.count("\n") == 1 and clean(result.err), result.err
        assert "is this a RabbitMQ definitions file?" in result.err
    assert not (tmp_path / "out").exists()


def test_shapes_are_named_in_words():
    assert shape_problem({"rabbitmq_version": 5}, OVERVIEW) == "rabbitmq_version is a number, not text"
    assert shape_problem({"cluster_name": True}, OVERVIEW) == "cluster_name is true, not text"
    assert shape_problem({"policies": [{"name": "p", "pattern": "", "definition": {}, "priority": "1"}]},
                         DEFINITIONS) == "policies[0].priority is text, not a whole number"
    assert shape_problem([], OVERVIEW) == "the answer is a list, not an object"


# -- the management API: odd answers ----------------------------------------------------------


class Server:
    """A throw-away HTTP(S) server on 127.0.0.1, answering every request with ``answer(handler)``."""

    def __init__(self, answer: Any, context: ssl.SSLContext | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                answer(self)

            do_PUT = do_DELETE = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]

    def __enter__(self) -> Server:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def answering(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Any:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("content-type", content_type)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        if "transfer_encoding" not in headers:
            handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def failure(call: Any) -> str:
    with pytest.raises(BrokerError) as info:
        call()
    assert clean(str(info.value)), str(info.value)
    return str(info.value)


def test_an_html_error_page_is_named_by_its_status_not_its_markup():
    page = b"<!DOCTYPE HTML>\n<html><body><h1>Error response</h1></body></html>"
    with Server(answering(404, page, "text/html;charset=utf-8")) as server:
        url = f"http://127.0.0.1:{server.port}"
        message = failure(lambda: ManagementClient(url).overview())
    assert f"{url} does not answer as the RabbitMQ management API: GET /api/overview got HTTP 404 Not Found;" in message
    assert "<" not in message


def test_a_refused_request_says_which_request_and_where():
    with Server(answering(400, b'{"error": "bad_request", "reason": "inequivalent arg"}')) as server:
        url = f"http://127.0.0.1:{server.port}"
        with pytest.raises(RequestRefused) as info:
            ManagementClient(url).request("PUT", "queues", "v", "a/b", body={})
        assert (info.value.status, info.value.reason) == (400, "inequivalent arg")
        assert str(info.value) == f"the broker at {url} refused PUT /api/queues/v/a%2Fb: inequivalent arg (HTTP 400)"
        message = failure(lambda: ManagementClient(url).get_or_none("queues", "v"))
    assert message == f"the broker at {url} refused GET /api/queues/v: inequivalent arg (HTTP 400)"


def test_a_broker_failure_says_where_the_details_are():
    with Server(answering(500, b'{"error": "internal", "reason": "{badmatch,{error,enoent}}"}')) as server:
        url = f"http://127.0.0.1:{server.port}"
        message = failure(lambda: ManagementClient(url).request("PUT", "vhosts", "v", body={}))
    assert message == (f"the broker at {url} failed on PUT /api/vhosts/v: HTTP 500 {{badmatch,{{error,enoent}}}} "
                       "(the broker's log has the details)")


def test_an_answer_cut_in_the_middle_is_a_broken_connection(monkeypatch):
    monkeypatch.setattr(client_module, "BACKOFF", (0, 0))
    cut = answering(200, b"5\r\n{\"a\"", transfer_encoding="chunked")
    with Server(cut) as server:
        url = f"http://127.0.0.1:{server.port}"
        message = failure(lambda: ManagementClient(url).request("GET", "overview"))
    assert message == f"the connection to {url} broke while the answer to GET /api/overview was read (tried 3 times)"


def test_a_host_name_with_a_space_is_an_invalid_url():
    message = failure(lambda: ManagementClient("http://exa mple.com:15672"))
    assert message == "invalid management URL 'http://exa mple.com:15672': the host name holds a space"
    assert "the host name holds '<'" in failure(lambda: ManagementClient("http://a<b:15672"))


@pytest.mark.parametrize("url, said", [
    ("http://a..b:15672", "'a..b' is not a host name (an empty part between dots, or a part over 63 characters)"),
    (f"http://{'x' * 64}.example:15672", "is not a host name"),
    ("http://rabbit:15672/?vhost=a", "it must not hold a query ('?') or a fragment ('#')"),
    ("http://rabbit:15672/#top", "it must not hold a query ('?') or a fragment ('#')"),
    ("http://rabbit:15672/?", "it must not hold a query ('?') or a fragment ('#')"),
])
def test_a_url_that_cannot_reach_a_broker_is_refused_before_any_request(url, said):
    assert said in failure(lambda: ManagementClient(url))


def test_a_url_with_an_odd_host_name_is_one_line_on_the_command_line(run, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("vhosts: {v: {}}\n", encoding="utf-8")
    result = run("plan", str(path), "--url", "http://a..b:1")
    assert result.code == 1 and result.err.count("\n") == 1 and clean(result.err), result.err
    assert "is not a host name" in result.err


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A self-signed certificate for 'localhost' (cert.pem, key.pem), another for a client
    (client.pem, client.key), and a file that is not PEM (garbage.pem)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate with")
    folder = tmp_path_factory.mktemp("certs")
    for cert, key, subject, extra in (("cert.pem", "key.pem", "/CN=localhost", ["-addext", "subjectAltName=DNS:localhost"]),
                                      ("client.pem", "client.key", "/CN=client", [])):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / key),
                        "-out", str(folder / cert), "-days", "2", "-subj", subject, *extra],
                       check=True, capture_output=True)
    (folder / "garbage.pem").write_text("not a certificate\n", encoding="utf-8")
    return folder


@pytest.fixture
def https(certs):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    with Server(answering(200, b'{"rabbitmq_version": "3.13.7"}'), context) as server:
        yield server.port


@pytest.fixture
def no_ca_bundle_in_the_environment(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def test_the_tls_server_of_these_tests_works_with_its_ca(certs, https):
    client = ManagementClient(f"https://localhost:{https}", verify=str(certs / "cert.pem"))
    assert client.request("GET", "overview") == {"rabbitmq_version": "3.13.7"}


def test_https_to_a_plain_http_port_says_it_does_not_speak_tls():
    with Server(answering(200, b"{}")) as server:
        url = f"https://127.0.0.1:{server.port}"
        message = failure(lambda: ManagementClient(url).request("GET", "overview"))
    assert message == f"TLS error talking to {url}: that port does not speak TLS (is it an http:// port?)"


def test_an_untrusted_certificate_says_to_give_the_ca(https, no_ca_bundle_in_the_environment):
    url = f"https://localhost:{https}"
    message = failure(lambda: ManagementClient(url).request("GET", "overview"))
    assert message == (f"TLS error talking to {url}: the broker's certificate is not trusted by this machine's CA "
                       "certificates: give the CA that signed it (tls.ca of the target in topology.toml), or "
                       "--insecure for tests only")


def test_a_certificate_for_another_host_name_says_so(certs, https):
    url = f"https://127.0.0.1:{https}"
    message = failure(lambda: ManagementClient(url, verify=str(certs / "cert.pem")).request("GET", "overview"))
    assert message == (f"TLS error talking to {url}: the broker's certificate is not for the host name 127.0.0.1: "
                       "connect with a name the certificate holds (or --insecure, for tests only)")


@pytest.mark.parametrize("verify, cert, said", [
    ("garbage.pem", None, "the CA file {folder}/garbage.pem holds no PEM certificate"),
    ("missing.pem", None, "the CA file {folder}/missing.pem does not exist"),
    ("cert.pem", ("garbage.pem", "garbage.pem"), "the client certificate {folder}/garbage.pem and key "
                                                 "{folder}/garbage.pem cannot be used: not PEM"),
    ("cert.pem", ("client.pem", "key.pem"), "the client certificate {folder}/client.pem and key {folder}/key.pem cannot "
                                            "be used: not PEM, a key with a passphrase, or a key that does not belong"),
    ("cert.pem", ("client.pem", "missing.key"), "the client key file {folder}/missing.key does not exist"),
    ("cert.pem", "garbage.pem", "the client certificate file {folder}/garbage.pem cannot be used: it must hold the "
                                "certificate and its key"),
])
def test_a_tls_file_that_cannot_be_used_is_named(certs, https, verify, cert, said):
    url = f"https://localhost:{https}"
    given = tuple(str(certs / c) for c in cert) if isinstance(cert, tuple) else (str(certs / cert) if cert else None)
    message = failure(lambda: ManagementClient(url, verify=str(certs / verify), cert=given).request("GET", "overview"))
    assert message.startswith(f"TLS error talking to {url}: " + said.format(folder=certs)), message


def test_a_targets_tls_files_are_named_on_the_command_line(certs, https, run, tmp_path, monkeypatch):
    (tmp_path / "t.yaml").write_text("vhosts: {v: {}}\n", encoding="utf-8")
    project(tmp_path, f'[targets.prod]\nurl = "https://localhost:{https}"\nfiles = ["t.yaml"]\n'
                      f'tls = {{ ca = "{certs / "garbage.pem"}" }}\n')
    monkeypatch.chdir(tmp_path)
    result = run("plan", "--target", "prod")
    assert result.code == 1 and result.err.count("\n") == 1 and clean(result.err), result.err
    assert f"the CA file {certs / 'garbage.pem'} holds no PEM certificate" in result.err


# -- options out of their range ---------------------------------------------------------------


@pytest.mark.parametrize("args, said", [
    (("plan", "{path}", "--timeout", "0"), "Invalid value for '--timeout': give 0.1 to 3600 seconds"),
    (("plan", "{path}", "--timeout", "nan"), "Invalid value for '--timeout': give 0.1 to 3600 seconds"),
    (("plan", "{path}", "--timeout", "3601"), "Invalid value for '--timeout': give 0.1 to 3600 seconds"),
    (("apply", "{path}", "--lock-timeout", "-1"), "Invalid value for '--lock-timeout': give 0 to 86400 seconds"),
    (("apply", "{path}", "--lock-timeout", "inf"), "Invalid value for '--lock-timeout': give 0 to 86400 seconds"),
    (("lint", "{path}", "--cluster-size", "0"), "Invalid value for '--cluster-size': give at least 1 node"),
])
def test_an_option_out_of_its_range_says_the_range_in_words(run, write, args, said):
    path = write("vhosts: {v: {}}\n")
    result = run(*(a.format(path=path) for a in args))
    assert result.code == 1 and said in result.err and clean(result.err), result.err


def test_options_in_their_range_are_taken(run, write):
    path = write("vhosts: {v: {queues: {q: {type: quorum}}}}\n")
    assert run("lint", path, "--cluster-size", "1").code in (0, 2)
    assert run("lint", path, "--cluster-size", "3").code == 0


# -- a guard over hostile files --------------------------------------------------------------


HOSTILE_PROJECTS = [b"\xff\xfe", b"url = http://x", b"[a]\n[a]\n", b"targets = 5", b'[targets.a]\nurl = "h"\ntls = []',
                    b'[targets.a]\nurl = "h"\nfiles = [[]]', b"x = " + b"[" * 3000, b'[targets.a]\nurl = "\x01"',
                    b"a = 1979-13-45", b'a = "\\uZZZZ"', b"a = '''x", b"a = {b = 1}\n[a.c]\n", b"= 1"]
HOSTILE_JSON = [b"\xff", b"", b"{", b'{"a": nan}', b"NaN", b'"x"', b'{"queues": [[]]}', b'{"bindings": [{"source": 1}]}',
                b'{"policies": [{"name": "p", "pattern": "x", "definition": []}]}', b'{"users": {}}',
                b'{"parameters": [{"component": 1, "name": "n", "value": 1}]}', b'{"vhosts": [null]}']


def test_no_hostile_project_or_definitions_file_gets_a_traceback_or_internal_words(run, tmp_path):
    for number, data in enumerate(HOSTILE_PROJECTS):
        folder = tmp_path / f"p{number}"
        folder.mkdir()
        result = run("validate", "--project", project(folder, data), "--all-targets")
        assert result.code == 1 and clean(result.err), (data, result.err)
    for number, data in enumerate(HOSTILE_JSON):
        path = tmp_path / f"d{number}.json"
        path.write_bytes(data)
        result = run("export", "--from-definitions", str(path), "--out", str(tmp_path / "out"))
        assert result.code == 1 and clean(result.err), (data, result.err)
        result = run("apply", "--plan", str(path), "--dry-run")
        assert result.code == 1 and clean(result.err), (data, result.err)


def test_live_routing_tests_the_broker_refuses_say_which_request_once(tmp_path):
    """The throw-away vhost's import refused: the line says which request, where, and why, once."""
    from topology.engine import load_valid
    from topology.routing_tests import run_live
    from topology.state import desired_state

    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v:\n    queues:\n      q: {}\ntests:\n  - {vhost: v, exchange: '', routing_key: q, "
                    "queues: [q]}\n", encoding="utf-8")
    topology = load_valid([str(path)], offline=True)
    deleted = []

    class Refusing:
        """Refuses the import as the broker at http://b:15672 would, and records the deletion."""

        def import_definitions(self, document: dict[str, Any]) -> None:
            raise RequestRefused(400, "inequivalent arg 'x-queue-type'", "POST", "/api/definitions", "http://b:15672")

        def delete_vhost(self, name: str) -> None:
            deleted.append(name)

    with pytest.raises(TopologyError) as info:
        run_live(topology, desired_state(topology), Refusing(), object(), prefix="tt-")
    message = str(info.value)
    assert message == (f"cannot build the throw-away vhost {deleted[0]} for vhost 'v': the broker at http://b:15672 "
                       "refused POST /api/definitions: inequivalent arg 'x-queue-type' (HTTP 400)")
    assert message.count("http://b:15672") == 1 and "answered" not in message


def test_the_environments_ca_bundle_is_used_though_read_once(certs, https, monkeypatch):
    """The client reads the environment's settings once (requests would read them per request):
    REQUESTS_CA_BUNDLE still verifies the broker when no CA is given."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs / "cert.pem"))
    assert ManagementClient(f"https://localhost:{https}").request("GET", "overview") == {"rabbitmq_version": "3.13.7"}
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs / "client.pem"))  # another CA: refused
    assert "TLS error" in failure(lambda: ManagementClient(f"https://localhost:{https}").request("GET", "overview"))


def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(monkeypatch):
    seen: list[str] = []

    def proxy(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.path)  # a proxy is sent the whole URL
        answering(200, b'{"rabbitmq_version": "3.13.7"}')(handler)

    with Server(answering(200, b'{"rabbitmq_version": "4.0.5"}')) as broker, Server(proxy) as through:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{through.port}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{through.port}")
        url = f"http://127.0.0.1:{broker.port}"
        assert ManagementClient(url).request("GET", "overview") == {"rabbitmq_version": "3.13.7"}
        assert seen == [f"{url}/api/overview"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.setenv("no_proxy", "127.0.0.1")
        assert ManagementClient(url).request("GET", "overview") == {"rabbitmq_version": "4.0.5"}
        assert len(seen) == 1


def test_a_cookie_the_server_sets_is_sent_back_with_the_next_requests():
    """A load balancer before a cluster may keep a client on one node with a cookie: the client
    sends back what it was given, as a requests session does."""
    seen: list[str | None] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("Cookie"))
        cookie = {} if seen[1:] else {"set_cookie": "AWSALB=node-2; Path=/"}
        answering(200, b'{"rabbitmq_version": "4.0.5"}', **cookie)(handler)

    with Server(answer) as server:
        client = ManagementClient(f"http://127.0.0.1:{server.port}")
        for _ in range(3):
            assert client.request("GET", "overview") == {"rabbitmq_version": "4.0.5"}
        client.request("PUT", "vhosts", "v", body={})
        client.close()
    assert seen == [None, "AWSALB=node-2", "AWSALB=node-2", "AWSALB=node-2"]


def test_reads_held_for_a_gate_that_opens_after_close_are_not_sent():
    """An apply that stops before it holds its locks closes its client, then opens the gate: what
    waited for it is answered as cancelled, without a request or a reading thread."""
    client = ManagementClient("http://127.0.0.1:9")  # nothing answers there: a request would fail otherwise
    client.gate = threading.Event()
    client.prefetch("definitions", "v")
    slot = client._prefetched[(("definitions", "v"), ())]
    client.close()
    client.gate.set()
    assert slot.done.wait(10)
    assert isinstance(slot.error, BrokerError) and str(slot.error) == "the read was cancelled"
    assert not client.requests_made and client._readers == 0
