"""The management client facing answers of the wrong shape, from a bounded fake management API on
127.0.0.1 (a real broker never sends these): every command ends in one error line and exit 1,
never a traceback, a wrong plan or a false success."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topology.broker.shapes import BINDING, DEFINITIONS, EXCHANGE, OVERVIEW, PARAMETER, POLICY, QUEUE, shape_problem

VALID = {
    "/api/overview": {"rabbitmq_version": "4.3.6", "cluster_name": "fake", "exchange_types": [
        {"name": t} for t in ("direct", "fanout", "topic", "headers")]},
    "/api/vhosts": [{"name": "v", "tracing": False}],
    "/api/definitions/v": {"exchanges": [{"name": "x", "type": "fanout", "durable": True, "auto_delete": False,
                                          "internal": False, "arguments": {}}],
                           "queues": [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}}],
                           "bindings": [], "policies": [], "parameters": []},
}
FILES = "vhosts:\n  v:\n    exchanges:\n      x: {type: fanout}\n    queues:\n      q: {}\n"

LISTS = {
    "/api/overview": {**VALID["/api/overview"], "rabbitmq_version": "3.13.7"},
    "/api/vhosts": VALID["/api/vhosts"],
    "/api/queues/v": [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}, "exclusive": False}],
    "/api/exchanges/v": [{"name": n, "type": t, "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
                         for n, t in (("", "direct"), ("amq.fanout", "fanout"), ("x", "fanout"))],
    "/api/bindings/v": [{"source": "", "vhost": "v", "destination": "q", "destination_type": "queue",
                         "routing_key": "q", "arguments": {}, "properties_key": "q"}],
    "/api/policies/v": [],
    "/api/parameters": [],
}
"""The same broker before RabbitMQ 4.3.3, whose vhost is read from its lists (topology.broker.lists)."""
LIST_SHAPES = {"/api/overview": OVERVIEW, "/api/vhosts": [{"name": "str"}], "/api/queues/v": [QUEUE],
               "/api/exchanges/v": [EXCHANGE], "/api/bindings/v": [BINDING], "/api/policies/v": [POLICY],
               "/api/parameters": [PARAMETER]}


class LocalServer:
    """An HTTP server on 127.0.0.1 serving ``self.server`` while in a ``with`` block."""

    server: ThreadingHTTPServer
    url: str

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeApi(LocalServer):
    """Answers ``answers[path]`` (status 200) to a GET, 404 to anything else; ``seen``: the paths
    asked for, in order; ``queries``: each one's query string."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.seen: list[str] = []
        self.queries: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path, query = urlsplit(self.path).path, urlsplit(self.path).query
                api.seen.append(path)
                api.queries.append(query)
                status, body = (200, json.dumps(api.answers[path]).encode()) if path in api.answers else (
                    404, b'{"error":"Object Not Found","reason":"Not Found"}')
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.serve(Handler)


def one_error_line(result) -> bool:
    return result.code == 1 and result.err.count("\n") == 1 and result.err.startswith("error: ") \
        and "Traceback" not in result.err and "internal error" not in result.err


@pytest.mark.parametrize("answers", [VALID, LISTS], ids=["export", "lists"])
def test_the_valid_answers_plan(run, write, answers):
    with FakeApi(answers) as fake:
        result = run("plan", write(FILES), "--url", fake.url)
    assert result.code == 0 and "No changes" in result.out, result.err


@pytest.mark.parametrize("path, answer, said", [
    ("/api/overview", [], "the answer is a list, not an object"),
    ("/api/vhosts", {}, "the answer is an object, not a list"),
    ("/api/vhosts", [{"tracing": True}], "[0].name is missing"),
    ("/api/definitions/v", {**VALID["/api/definitions/v"], "queues": [{"durable": True}]}, "queues[0].name is missing"),
    ("/api/definitions/v", {**VALID["/api/definitions/v"], "queues": [{"name": "q", "arguments": []}]},
     "queues[0].arguments is a list, not an object"),
    ("/api/definitions/v", {**VALID["/api/definitions/v"], "policies": [
        {"name": "p", "pattern": ".*", "definition": {}, "priority": "1"}]},
     "policies[0].priority is text, not a whole number"),
    ("/api/definitions/v", None, "the answer is empty"),
])
def test_an_answer_of_the_wrong_shape_is_one_error_line(run, write, path, answer, said):
    with FakeApi({**VALID, path: answer}) as fake:
        for command in (("plan",), ("drift",)):  # apply plans the same way, after taking its lock
            result = run(command[0], write(FILES), "--url", fake.url, *command[1:])
            assert one_error_line(result) and said in result.err, (command, result.err)


BROKER_LISTS = {
    "/api/overview": LISTS["/api/overview"], "/api/vhosts": VALID["/api/vhosts"],
    "/api/queues": [{**entry, "vhost": "v"} for entry in LISTS["/api/queues/v"]],
    "/api/exchanges": [{**entry, "vhost": "v"} for entry in LISTS["/api/exchanges/v"]],
    "/api/bindings": LISTS["/api/bindings/v"], "/api/policies": [], "/api/parameters": [],
    "/api/users": [{"name": "u", "password_hash": "aGFzaA==", "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": ["monitoring"], "limits": {}}],
    "/api/permissions": [{"user": "u", "vhost": "v", "configure": ".*", "write": ".*", "read": ".*"}],
    "/api/topic-permissions": [], "/api/global-parameters": [], "/api/operator-policies": [], "/api/vhost-limits": [],
}
"""A whole broker before RabbitMQ 4.3.3, which `export` reads from its lists of every vhost."""


def test_the_whole_broker_read_from_its_lists_exports(run, tmp_path):
    with FakeApi(BROKER_LISTS) as fake:
        result = run("export", "--out", str(tmp_path), "--url", fake.url)
    assert result.code == 0, result.err
    assert "/api/definitions" not in fake.seen and "/api/users" in fake.seen
    import yaml

    written = yaml.safe_load((tmp_path / "vhosts" / "v.yaml").read_text(encoding="utf-8"))
    # the built-in exchanges and the default exchange's binding left out, as the export does
    assert written == {"vhosts": {"v": {"exchanges": {"x": {"type": "fanout"}}, "queues": {"q": {}}}}}
    cluster = yaml.safe_load((tmp_path / "cluster.yaml").read_text(encoding="utf-8"))
    assert cluster == {"users": {"u": {"tags": ["monitoring"], "permissions": {
        "v": {"configure": ".*", "write": ".*", "read": ".*"}}}}}


@pytest.mark.parametrize("path, answer, said", [
    ("/api/users", [{"password_hash": "aGFzaA=="}], "[0].name is missing"),
    ("/api/permissions", [{"user": "u"}], "[0].vhost is missing"),
    ("/api/queues", [{"name": "q", "exclusive": False}], "[0].vhost is missing"),
    ("/api/users", None, "404"),
])
def test_a_whole_broker_list_of_the_wrong_shape_is_one_error_line(run, tmp_path, path, answer, said):
    answers = {**BROKER_LISTS, path: answer} if answer is not None else {
        key: value for key, value in BROKER_LISTS.items() if key != path}
    with FakeApi(answers) as fake:
        result = run("export", "--out", str(tmp_path), "--url", fake.url)
    assert one_error_line(result) and said in result.err and "GET " + path in result.err, result.err
    assert "aGFzaA==" not in result.err + result.out
    assert not (tmp_path / "cluster.yaml").exists()


@pytest.mark.parametrize("answers", [VALID, LISTS], ids=["export", "lists"])
def test_the_overview_is_read_without_its_statistics(run, write, answers):
    # its statistics cost the broker a walk over every object, and a plan waits for its version
    with FakeApi(answers) as fake:
        result = run("plan", write(FILES), "--url", fake.url)
    assert result.code == 0, result.err
    overviews = [query for path, query in zip(fake.seen, fake.queries) if path == "/api/overview"]
    assert overviews and all("disable_stats=true" in query.split("&") for query in overviews)


@pytest.mark.parametrize("path, answer, said", [
    ("/api/queues/v", {}, "the answer is an object, not a list"),
    ("/api/queues/v", [{"durable": True}], "[0].name is missing"),
    ("/api/bindings/v", [{"source": "x", "destination": 1}], "[0].destination is a number, not text"),
    ("/api/exchanges/v", [{"name": "x", "arguments": []}], "[0].arguments is a list, not an object"),
    ("/api/policies/v", [{"name": "p"}], "[0].pattern is missing"),
    ("/api/parameters", [{"name": "p", "component": "shovel"}], "[0].value is missing"),
    # what tells the objects the export leaves out, which RabbitMQ always writes
    ("/api/queues/v", [{"name": "q", "durable": True, "arguments": {}}], "[0].exclusive is missing"),
    ("/api/queues/v", [{"name": "q", "exclusive": "false"}], "[0].exclusive is text, not true or false"),
    ("/api/bindings/v", [{"source": "x", "destination": "q"}], "[0].destination_type is missing"),
])
def test_a_list_of_the_wrong_shape_is_one_error_line(run, write, path, answer, said):
    with FakeApi({**LISTS, path: answer}) as fake:
        for command in (("plan",), ("drift",)):
            result = run(command[0], write(FILES), "--url", fake.url, *command[1:])
            assert one_error_line(result) and said in result.err and "GET /api/" + path[5:] in result.err, \
                (command, result.err)


@pytest.mark.parametrize("answer, said", [
    ({}, "the answer is an object, not a list"),
    ([{"messages": 1}], "[0].name is missing"),
])
def test_statistics_of_the_wrong_shape_read_beside_the_fingerprints_are_one_error_line(run, write, answer, said):
    """A plan that deletes a queue reads its vhost's statistics while another thread fingerprints
    the changes: what goes wrong in the read ends the plan as it did before, in one line."""
    files = "vhosts:\n  v:\n    exchanges:\n      x: {type: fanout}\n"  # q is not declared: --prune deletes it
    with FakeApi({**VALID, "/api/queues/v": answer}) as fake:
        result = run("plan", write(files), "--url", fake.url, "--prune")
    assert one_error_line(result) and said in result.err and "GET /api/queues/v" in result.err, result.err
    assert "/api/queues/v" in fake.seen


def test_where_the_lists_say_the_vhost_is_not_there_the_export_is_asked(run, write):
    answers = {path: answer for path, answer in LISTS.items() if not path.endswith("/v")}
    with FakeApi({**answers, "/api/definitions/v": VALID["/api/definitions/v"]}) as fake:
        result = run("plan", write(FILES), "--url", fake.url)
    assert result.code == 0 and "No changes" in result.out, result.err
    assert "/api/definitions/v" in fake.seen


def test_vhosts_read_from_lists_share_connections_and_one_read_of_every_parameter():
    from topology.broker import lists
    from topology.broker.client import READERS, ManagementClient

    vhosts = [f"v{i}" for i in range(20)]
    answers = {**LISTS, **{f"/api/{section}/{v}": LISTS[f"/api/{section}/v"] for v in vhosts
                           for section in ("queues", "exchanges", "bindings", "policies")}}
    with FakeApi(answers) as fake:
        client = ManagementClient(fake.url, "guest", "guest")
        try:
            client.overview()
            read = [client.definitions(v) for v in vhosts]
            sessions = len(client._transport._connections)
            client.drop_read_ahead()  # a later plan reads them again
            client.definitions("v0")
        finally:
            client.close()
    exported = [[{k: q[k] for k in lists.FIELDS["queues"]} for q in r["queues"]] for r in read]  # as listed: more fields
    assert all(queues == [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}}] for queues in exported)
    assert sessions <= 1 + READERS  # connections kept from one vhost to the next, not one more per vhost
    assert fake.seen.count("/api/parameters") == 2


@pytest.mark.parametrize("url_path", ["/api", "/wrong"])
def test_a_url_that_is_not_the_management_apis_is_one_error_line(run, write, url_path):
    with FakeApi(VALID) as fake:
        result = run("plan", write(FILES), "--url", fake.url + url_path)
    assert one_error_line(result) and "does not answer as the RabbitMQ management API" in result.err, result.err
    assert "without /api" in result.err


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
                        ["name", "queues", "arguments", "vhost", "source", "destination", "definition", "pattern",
                         "priority", "type", "value", "component", "exchanges", "rabbitmq_version"]), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=int(os.environ.get("TOPOLOGY_ANSWER_EXAMPLES", "30")), deadline=None, database=None,
          derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(VALID)), answer=JSON)
def test_any_answer_is_a_plan_or_one_error_line(run, write, path, answer):
    with FakeApi({**VALID, path: answer}) as fake:
        result = run("plan", write(FILES), "--url", fake.url, "--format", "json")
    fits = shape_problem(answer, {"/api/overview": OVERVIEW, "/api/vhosts": [{"name": "str"}],
                                  "/api/definitions/v": DEFINITIONS}[path]) is None
    if result.code in (0, 2):
        assert fits and "changes" in json.loads(result.out), (answer, result.err)
    else:
        assert one_error_line(result), (answer, result.err)


@settings(max_examples=int(os.environ.get("TOPOLOGY_ANSWER_EXAMPLES", "30")), deadline=None, database=None,
          derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(set(LISTS) - set(VALID))), answer=JSON)
def test_any_list_is_a_plan_or_one_error_line(run, write, path, answer):
    with FakeApi({**LISTS, path: answer}) as fake:
        result = run("plan", write(FILES), "--url", fake.url, "--format", "json")
    if result.code in (0, 2):
        assert shape_problem(answer, LIST_SHAPES[path]) is None and "changes" in json.loads(result.out), \
            (answer, result.err)
    else:
        assert one_error_line(result), (answer, result.err)


def test_a_server_that_echoes_the_password_in_any_encoding_never_gets_it_printed(run, write, monkeypatch):
    """The management password comes back base64- (its Basic header) and URL-encoded in an error."""
    import base64
    from urllib.parse import quote

    password = "s3cret-Pässw0rd/+="

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"error": "internal", "reason": f"auth {self.headers.get('authorization')} for "
                               f"user:{quote(password, safe='')} / {quote(password)} / "
                               f"{base64.urlsafe_b64encode(password.encode()).decode()}"}).encode()
            self.send_response(500)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TOPOLOGY_PASSWORD", password)
        result = run("plan", write(FILES), "--url", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 1 and "HTTP 500" in result.err, result.err
    encoded = [base64.b64encode(f"guest:{password}".encode()).decode()[8:-4], quote(password, safe=""), quote(password),
               base64.urlsafe_b64encode(password.encode()).decode()[:-4], password]
    assert not [form for form in encoded if form in result.err], result.err


def test_a_redirect_is_not_followed(run, write):
    """A management URL that redirects (to another host) would take the credentials along."""
    seen = []

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.send_response(302)
            self.send_header("location", "http://elsewhere.invalid:15672" + self.path)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run("plan", write(FILES), "--url", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert one_error_line(result) and "redirected GET /api/overview to http://elsewhere.invalid:15672" in result.err
    assert len(seen) == len(set(seen)) <= 3  # each read (some ahead) asked once: none followed, none tried again


class TricklingApi(LocalServer):
    """Answers every GET slowly: the status line and headers at once (or, with ``headers``, one
    byte at a time), then the body one byte every ``gap`` seconds: each wait is short, the whole
    answer is not."""

    def __init__(self, gap: float = 0.2, headers: bool = False) -> None:
        api = self
        self.gap, self.slow_headers = gap, headers

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                import time

                body = json.dumps(VALID.get(urlsplit(self.path).path, {})).encode() * 50
                head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                        ).encode()
                try:
                    if api.slow_headers:
                        for byte in head:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(api.gap)
                    else:
                        self.wfile.write(head)
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(api.gap)
                except OSError:  # the client gave up
                    pass

        self.serve(Handler)


@pytest.mark.parametrize("headers", [False, True], ids=["slow body", "slow headers"])
def test_timeout_bounds_a_whole_answer_not_each_wait(run, write, headers):
    """A server that sends a byte every 0.2 s never trips a per-read timeout of 1 s; --timeout 1
    bounds each try of the whole request (three tries, 0.5 s and 1.5 s apart), so the plan ends in
    one line about the timeout (before, it waited the whole answer out: half an hour here)."""
    with TricklingApi(headers=headers) as fake:
        result = run("plan", write(FILES), "--url", fake.url, "--timeout", "1")
    assert one_error_line(result), result.err
    assert "did not answer GET /api/overview within 1s" in result.err


class RefusingApi(FakeApi):
    """:class:`FakeApi`, but ``refused[path]`` answers 401 with that reason (as RabbitMQ words it)."""

    def __init__(self, answers: dict[str, Any], refused: dict[str, str]) -> None:
        super().__init__(answers)
        handler = self.server.RequestHandlerClass
        answer = handler.do_GET

        def do_get(request: BaseHTTPRequestHandler) -> None:
            path = urlsplit(request.path).path
            if path not in refused:
                return answer(request)
            body = json.dumps({"error": "not_authorised", "reason": refused[path]}).encode()
            request.send_response(401)
            request.send_header("content-type", "application/json")
            request.send_header("content-length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        handler.do_GET = do_get


@pytest.mark.parametrize("reason, said", [
    ("Access refused.", "refused GET /api/definitions/v to user 'guest': Access refused. (HTTP 401): the user lacks a "
                        "permission in that vhost"),
    ("Login failed", "refused the credentials of user 'guest' (HTTP 401)"),  # RabbitMQ 3.x
    ("Not_Authorized", "refused the credentials of user 'guest' (HTTP 401)"),  # RabbitMQ 4.x
    ("Not administrator user", "refused GET /api/definitions/v to user 'guest': Not administrator user (HTTP 401): "
                               "the tool needs a user with the administrator tag"),  # seen on 3.10.8
])
def test_a_refused_permission_is_not_taken_for_refused_credentials(run, write, reason, said):
    with RefusingApi(VALID, {"/api/definitions/v": reason}) as fake:
        result = run("plan", write(FILES), "--url", fake.url)
    assert one_error_line(result), result.err
    assert said in result.err


def test_the_long_lists_and_the_queue_statistics_are_asked_for_unsorted_and_no_other():
    """``sort=`` (RabbitMQ 3.10-3.12 then skip their sort; later ones ignore it) on the queue and
    binding lists and the reads kept by name, and on no other request: the others' order is shown."""
    from urllib.parse import parse_qs

    from topology.broker.client import ManagementClient

    with FakeApi(LISTS) as fake:
        client = ManagementClient(fake.url, "guest", "guest")
        try:
            client.overview()
            client.definitions("v")
            client.queue_statistics("v")
            client.exclusive_queues("v")
            client.vhosts()
        finally:
            client.close()
    unsorted = sorted(path for path, query in zip(fake.seen, fake.queries)
                      if parse_qs(query, keep_blank_values=True).get("sort") == [""])
    assert unsorted == ["/api/bindings/v", "/api/queues/v", "/api/queues/v", "/api/queues/v"]
    assert fake.seen.count("/api/queues/v") == 3 and "/api/exchanges/v" in fake.seen
