"""The published JSON Schema and the offline behaviour of the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from topology import __version__
from topology.schema import SCHEMA_ID, SCHEMA_PATH, render


def test_published_schema_is_up_to_date():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "topology/topology.schema.json is stale: run python -m topology.schema"
    )


def test_schema_describes_the_format():
    schema = json.loads(render())
    queue = schema["$defs"]["Queue"]
    assert queue["additionalProperties"] is False
    assert {"message_ttl", "max_length_bytes", "dead_letter_exchange", "arguments"} <= set(queue["properties"])
    assert schema["$defs"]["Exchange"]["required"] == ["type"]


def test_the_schema_command_prints_the_packaged_schema_with_its_id(run, tmp_path):
    """`topology schema` prints the schema shipped in the package (no model is loaded for it), which
    has a stable $id; --out writes the same text."""
    result = run("schema")
    assert result.code == 0 and result.out == render()
    assert json.loads(result.out)["$id"] == SCHEMA_ID
    out = tmp_path / "schema.json"
    assert run("schema", "--out", str(out)).code == 0
    assert out.read_text(encoding="utf-8") == render()
    code = ("import sys, topology.cli\ntry:\n    topology.cli.main(['schema'])\nexcept SystemExit:\n"
            "    print('pydantic' in sys.modules, file=sys.stderr)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout == render() and loaded.stderr.strip() == "False"


def test_the_schema_module_regenerates_and_checks_and_has_a_usage(tmp_path):
    done = subprocess.run([sys.executable, "-m", "topology.schema", "--check"], capture_output=True, text=True)
    assert done.returncode == 0 and "up to date" in done.stdout
    done = subprocess.run([sys.executable, "-m", "topology.schema", "--help"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 2 and "usage: python -m topology.schema" in done.stderr
    assert list(tmp_path.iterdir()) == []  # "--help" is not a file name


def test_export_writes_the_schema_beside_the_files_and_points_each_file_at_it(run, tmp_path):
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps({
        "vhosts": [{"name": "shop"}], "users": [{"name": "svc", "tags": [], "password_hash": ""}],
        "permissions": [{"user": "svc", "vhost": "shop", "configure": "", "write": ".*", "read": ".*"}],
        "queues": [{"name": "q", "vhost": "shop", "durable": True, "auto_delete": False, "arguments": {}}]}))
    out = tmp_path / "adopted"
    result = run("export", "--out", str(out), "--from-definitions", str(definitions))
    assert result.code == 0, result.err
    assert (out / "topology.schema.json").read_text(encoding="utf-8") == render()
    assert (out / "vhosts" / "shop.yaml").read_text().splitlines()[0] == \
        "# yaml-language-server: $schema=../topology.schema.json"
    assert (out / "cluster.yaml").read_text().splitlines()[0] == "# yaml-language-server: $schema=topology.schema.json"
    assert run("validate", str(out)).code == 0


def test_version(run):
    result = run("--version")
    assert result.code == 0 and result.out.strip() == f"topology {__version__}"


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "topology", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and __version__ in done.stdout


def test_validate_ok_and_invalid(run, write):
    good = write("vhosts: {v: {queues: {q: {}}}}")
    result = run("validate", good)
    assert result.code == 0 and "Valid: 1 vhost(s), 1 object(s) in 1 file(s)." in result.out
    bad = write("vhosts:\n  v:\n    queues:\n      q: {message_ttl: soon}\n    bindings:\n      - {source: nope, destination: q}\n",
                "bad.yaml")
    result = run("validate", bad)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert lines[0].startswith(f"{bad}:4: vhost 'v' queue 'q' message_ttl: invalid duration 'soon'")
    assert lines[-1] == "error: 1 problem found in the topology files"
    assert "Traceback" not in result.err


def test_validate_reports_every_problem_at_once(run, write):
    bad = write("""
        vhosts:
          v:
            queues:
              a: {type: quorum, max_priority: 5}
              b: {dead_letter_exchange: missing}
            bindings:
              - {source: nope, destination: a}
        """)
    result = run("validate", bad)
    assert result.code == 1
    assert "2 problems found" in result.err
    assert ":5: vhost 'v' queue 'a' max_priority:" in result.err
    # RabbitMQ accepts a dead-letter exchange that does not exist: a warning, not a problem
    assert "warning: " in result.err and ":6: vhost 'v' queue 'b' dead_letter_exchange: dead-letter exchange " \
        "'missing' is not declared in vhost 'v' (RabbitMQ accepts it; messages sent there are dropped)" in result.err
    assert ":8: vhost 'v' binding #1 source:" in result.err


def test_usage_errors_are_one_line(run):
    result = run("plan")
    assert result.code == 1
    assert result.err.count("\n") == 1 and result.err.startswith("error: give the topology files (PATHS)")
    result = run("plan", "x.yaml", "--format", "yaml")
    assert result.code == 1 and result.err.count("\n") == 1


def test_a_missing_file_is_a_located_error(run, tmp_path):
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.code == 1 and "nope.yaml: no such file or directory" in result.err


def test_apply_reports_a_broker_that_does_not_answer(run, write):
    path = write("vhosts: {v: {}}")
    # an unreachable AMQP port too: apply takes the lock first, and this test must not touch the real broker
    result = run("apply", path, "--url", "http://127.0.0.1:1", "--amqp-url", "amqp://127.0.0.1:1/", "--auto-approve")
    assert result.code == 1 and "cannot connect to AMQP at amqp://127.0.0.1:1" in result.err
    result = run("plan", path, "--url", "http://127.0.0.1:1")
    assert result.code == 1 and "cannot reach the management API" in result.err


def test_urls_never_show_credentials(run, write):
    from topology.broker.client import redact_url

    assert redact_url("http://u:pw@h:1/x") == "http://***@h:1/x"
    assert redact_url("u:pw@h:1") == "***@h:1"
    assert redact_url("http:/u:pw@h") == "http:/***@h"
    assert redact_url("http://h:15672") == "http://h:15672"
    path = write("vhosts: {v: {}}")
    for url in ("admin:s3cret@127.0.0.1:15672", "http://a:s3cret@127.0.0.1:15672", "http://u:s3cret@127.0.0.1:notaport"):
        result = run("plan", path, "--url", url)
        assert result.code == 1 and "s3cret" not in result.err + result.out
        assert result.err.count("\n") == 1


def test_odd_option_values_are_one_line_errors(run, write):
    path = write("vhosts: {v: {}}")
    for args in (["--timeout", "nan"], ["--timeout", "inf"], ["--url", "http://[::1"]):
        result = run("plan", path, *args)
        assert result.code == 1 and result.err.startswith("error: ") and result.err.count("\n") == 1


def test_a_failing_broker_is_one_clear_line(run, write):
    """A local server that answers every request with HTTP 500 (fault injection, no broker needed)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            body = b'{"error":"internal_error","reason":"boom"}'
            self.send_response(500)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        path = write("vhosts: {v: {}}")
        result = run("plan", path, "--url", f"http://127.0.0.1:{server.server_port}")
        assert result.code == 1
        assert result.err.count("\n") == 1
        assert "failed on GET /api/overview: HTTP 500 boom" in result.err
    finally:
        server.shutdown()
        server.server_close()


def test_validate_checks_a_broker_version_offline(run, write):
    path = write("vhosts:\n  v:\n    operator_policies:\n      ha: {pattern: '.*', definition: {ha-mode: all}}\n"
                 "    policies:\n      p: {pattern: '.*', apply_to: quorum_queues, definition: {max-length: 5}}\n")
    newer = run("validate", path, "--broker-version", "4.0")
    assert newer.code == 1 and ("classic queue mirroring (ha-* policy keys) is not supported from RabbitMQ 4.0 on: use "
                                "quorum queues ('topology export --transform quorum'") in newer.err
    assert "checked against 4.0 (--broker-version)" in newer.err
    older = run("validate", path, "--broker-version", "3.11")
    assert older.code == 1 and "needs RabbitMQ 3.12 or later" in older.err
    assert "operator policy key ha-mode needs RabbitMQ 3.11.10 or later" in older.err
    assert run("validate", path, "--broker-version", "3.13.7").code == 0
    bad = run("validate", path, "--broker-version", "latest")
    assert bad.code == 1 and "a RabbitMQ version such as" in bad.err


@pytest.mark.parametrize("given, expected", [
    ("4", (4, 0, 0)), ("4.0", (4, 0, 0)), ("4.x", (4, 0, 0)), ("4.X", (4, 0, 0)), ("3.13", (3, 13, 0)),
    ("3.13.x", (3, 13, 0)), ("3.13.7", (3, 13, 7)), (" 4.3.6 ", (4, 3, 6)),
])
def test_a_short_broker_version_is_the_first_release_of_its_series(given, expected):
    from topology.rules.versions import parse_given_version

    assert parse_given_version(given) == expected


@pytest.mark.parametrize("given", ["latest", "", "4.", "x", "4.0.0.1", "v4", "4.0-rc1", "99999.0"])
def test_a_broker_version_that_is_not_one_is_refused(given):
    from topology.rules.versions import parse_given_version

    with pytest.raises(ValueError, match="a RabbitMQ version such as 4, 4.0, 4.x or 3.13.7"):
        parse_given_version(given)


def test_a_one_number_broker_version_gets_the_rules_of_its_series(run, write):
    """`--broker-version 4` once compared below 4.0, so classic mirroring passed."""
    path = write("vhosts:\n  v:\n    policies:\n      ha: {pattern: '.*', definition: {ha-mode: all}}\n")
    for given in ("4", "4.x", "4.0"):
        refused = run("validate", path, "--broker-version", given)
        assert refused.code == 1 and "is not supported from RabbitMQ 4.0 on" in refused.err, given
        assert "; checked against 4.0" in refused.err, given
    assert run("validate", path, "--broker-version", "3").code == 0


def test_a_classic_queue_leader_locator_needs_4_0(run, write):
    path = write("vhosts:\n  v:\n    queues:\n      a: {leader_locator: balanced}\n"
                 "      b: {arguments: {x-queue-leader-locator: client-local}}\n"
                 "      q: {type: quorum, leader_locator: balanced}\n")
    assert run("validate", path).code == 0
    assert run("validate", path, "--broker-version", "4.0").code == 0
    older = run("validate", path, "--broker-version", "3.13")
    assert older.code == 1
    assert "x-queue-leader-locator (leader_locator) on a classic queue needs RabbitMQ 4.0 or later" in older.err
    assert older.err.count("needs RabbitMQ 4.0") == 2 and ":4:" in older.err and ":5:" in older.err  # a and b, not q
    bad = run("validate", write("vhosts:\n  v:\n    queues:\n      a: {arguments: {x-queue-leader-locator: nearest}}\n"))
    assert bad.code == 1 and "x-queue-leader-locator must be one of client-local, balanced" in bad.err


def test_a_negative_delivery_limit_means_no_limit_from_4_0(run, write):
    path = write("vhosts:\n  v:\n    queues:\n      a: {type: quorum, delivery_limit: -1}\n"
                 "      b: {type: quorum, arguments: {x-delivery-limit: -1}}\n"
                 "      c: {type: quorum, delivery_limit: 5}\n"
                 "    policies:\n      p: {pattern: '^z', definition: {delivery-limit: -1}}\n"
                 "    operator_policies:\n      o: {pattern: '^z', definition: {delivery-limit: -1}}\n")
    assert run("validate", path).code == 0
    assert run("validate", path, "--broker-version", "4.0.5").code == 0
    older = run("validate", path, "--broker-version", "3.13.7")
    assert older.code == 1 and older.err.count("a negative delivery limit (no limit) needs RabbitMQ 4.0 or later") == 4
    bad = run("validate", write("vhosts:\n  v:\n    policies:\n      p: {pattern: '^z', definition: {delivery-limit: x}}\n"))
    assert bad.code == 1 and "delivery-limit must be an integer (-1: no limit)" in bad.err


def test_operator_policy_keys_are_checked_per_version(run, write):
    path = write("vhosts:\n  v:\n    operator_policies:\n      cap: {pattern: '.*', definition: {queue-version: 2}}\n")
    for version, accepted in (("3.11.23", False), ("3.11.24", True), ("3.12.0", False), ("3.12.7", True), ("4.2", True)):
        result = run("validate", path, "--broker-version", version)
        assert (result.code == 0) is accepted, (version, result.err)
    assert ("is accepted only by RabbitMQ from 3.11.24 (before 3.12) and from 3.12.7 on"
            in run("validate", path, "--broker-version", "3.12.1").err)


def test_delayed_retry_keys_are_checked(run, write):
    path = write("vhosts:\n  v:\n    operator_policies:\n      retry:\n        pattern: '.*'\n"
                 "        definition: {delayed-retry-type: failed, delayed-retry-min: 1000, delayed-retry-max: 60000}\n"
                 "    policies:\n      p: {pattern: q, definition: {delayed-retry-type: all, delayed-retry-min: 5}}\n")
    assert run("validate", path, "--broker-version", "4.3.1").code == 0
    older = run("validate", path, "--broker-version", "4.3.0")
    assert older.code == 1 and "policy key delayed-retry-type needs RabbitMQ 4.3.1 or later" in older.err
    bad = write("vhosts:\n  v:\n    policies:\n      p:\n        pattern: q\n"
                "        definition: {delayed-retry-type: sometimes, delayed-retry-max: 5}\n"
                "      q: {pattern: q, definition: {delayed-retry-type: all, delayed-retry-min: 10, delayed-retry-max: 5}}\n",
                name="bad.yaml")
    result = run("validate", bad)
    assert result.code == 1
    assert "delayed-retry-type must be one of all, failed, returned, disabled" in result.err
    assert "delayed-retry-min is required when delayed-retry-type is sometimes" in result.err
    assert "delayed-retry-max must not be smaller than delayed-retry-min" in result.err


def test_the_brokers_word_on_a_deprecated_feature_decides_over_its_version(tmp_path):
    """4.3.0 denies transient non-exclusive queues by default, 4.3.6 was seen to permit them: where
    the broker says, its word counts; where it does not (before 3.13), the version rule does."""
    from topology.errors import ConfigError
    from topology.loader import load
    from topology.validate import check_broker_version
    from topology.variables import Variables

    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v:\n    queues:\n      t: {durable: false}\n      q: {}\n", encoding="utf-8")
    topology = load([str(path)], Variables(environment={}))
    asked = []

    def broker(answer):
        def permits(feature):
            asked.append(feature)
            return answer
        return permits

    check_broker_version(topology, (4, 3, 6), "4.3.6", permits=broker(True))
    assert asked == ["transient_nonexcl_queues"]
    with pytest.raises(ConfigError) as denied:
        check_broker_version(topology, (4, 0, 5), "4.0.5", permits=broker(False))
    assert "the broker (4.0.5) denies the deprecated feature transient_nonexcl_queues" in str(denied.value.problems[0])
    with pytest.raises(ConfigError) as by_version:
        check_broker_version(topology, (4, 3, 0), "4.3.0", permits=broker(None))
    assert "is not supported from RabbitMQ 4.3 on; the broker runs 4.3.0" in str(by_version.value.problems[0])
    check_broker_version(topology, (4, 2, 1), "4.2.1", permits=broker(None))
    # a file that uses no deprecated feature never makes the broker be asked
    asked.clear()
    path.write_text("vhosts:\n  v:\n    queues:\n      q: {}\n", encoding="utf-8")
    check_broker_version(load([str(path)], Variables(environment={})), (4, 3, 6), "4.3.6", permits=broker(False))
    assert asked == []


def test_a_mirroring_policy_is_refused_once_on_4_0_with_what_to_do(run, write):
    path = write("vhosts:\n  v:\n    policies:\n      ha: {pattern: '.*', definition: {ha-mode: exactly, ha-params: 2, "
                 "ha-sync-mode: automatic}}\n")
    result = run("validate", path, "--broker-version", "4.0")
    lines = [line for line in result.err.splitlines() if "mirroring" in line]
    assert result.code == 1 and len(lines) == 1, result.err
    assert "policy 'ha'" in lines[0] and "topology export --transform quorum" in lines[0]


@pytest.mark.parametrize("url, reason", [
    ("amqp://127.0.0.1:1", "the connection was refused, or the host cannot be reached"),
    ("amqp://no-such-host.invalid:5672", "the host name is not known"),
])
def test_an_amqp_endpoint_that_fails_is_one_line_in_words(url, reason):
    """What, where, after how long, why in words, and what sets the address: never pika's classes."""
    from topology.broker.amqp import Amqp
    from topology.errors import BrokerError

    with pytest.raises(BrokerError) as info:
        Amqp(url, "guest", "guest", timeout=2).connect("/", "test")
    message = str(info.value)
    assert message.startswith(f"cannot connect to AMQP at {url} (after ") and reason in message
    assert "TOPOLOGY_AMQP_URL" in message and "AMQPConnector" not in message and "\n" not in message


def test_an_endpoint_that_is_not_amqp_is_named_as_such():
    """A port that answers something else (here a server that writes an HTTP error and closes)."""
    import socket
    import threading

    from topology.broker.amqp import Amqp
    from topology.errors import BrokerError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        connection, _ = server.accept()
        connection.recv(100)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        connection.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(BrokerError) as info:
            Amqp(f"amqp://127.0.0.1:{server.getsockname()[1]}", "guest", "guest", timeout=3).connect("/", "test")
    finally:
        server.close()
    assert "does not speak AMQP 0-9-1" in str(info.value), str(info.value)


def test_a_markdown_plan_of_invalid_files_still_gives_a_comment_to_post(run, write):
    """A CI step posts stdout as a pull-request comment: on invalid files it says why, not nothing."""
    path = write("vhosts:\n  v:\n    queues:\n      q: {max_length: ten}\n")
    result = run("plan", path, "--format", "markdown")
    assert result.code == 1
    assert result.out.startswith("### :x: topology plan: error\n\n1 problem found in the topology files\n\n- ")
    assert "max\\_length" in result.out and "error: 1 problem found" in result.err
