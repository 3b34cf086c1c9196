"""The published JSON Schema and the offline behaviour of the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from topology import __version__
from topology.schema import SCHEMA_PATH, render


def test_published_schema_is_up_to_date():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "schemas/topology.schema.json is stale: run python -m topology.schema"
    )


def test_schema_describes_the_format():
    schema = json.loads(render())
    queue = schema["$defs"]["Queue"]
    assert queue["additionalProperties"] is False
    assert {"message_ttl", "max_length_bytes", "dead_letter_exchange", "arguments"} <= set(queue["properties"])
    assert schema["$defs"]["Exchange"]["required"] == ["type"]


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
    assert newer.code == 1 and "classic queue mirroring (ha-* policy keys); use quorum queues instead" in newer.err
    assert "checked against 4.0 (--broker-version)" in newer.err
    older = run("validate", path, "--broker-version", "3.11")
    assert older.code == 1 and "needs RabbitMQ 3.12 or later" in older.err
    assert "operator policy key ha-mode needs RabbitMQ 3.11.10 or later" in older.err
    assert run("validate", path, "--broker-version", "3.13.7").code == 0
    bad = run("validate", path, "--broker-version", "latest")
    assert bad.code == 1 and "a RabbitMQ version such as" in bad.err


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
