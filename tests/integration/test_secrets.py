"""No secret in any output: every command and format, saved plans and errors are searched
for a secret variable's value and for the management password."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker


HOOKS = """
vhosts:
  {vhost}:
    exchanges:
      hooks: {{type: headers}}
    queues:
      hooks.inbox: {{}}
    bindings:
      - source: hooks
        destination: hooks.inbox
        arguments: {{x-match: all, token: "${{HOOK_TOKEN}}"}}
"""


@pytest.fixture
def secret_user(api, vhost, monkeypatch):
    """A broker user with a random password, used through TOPOLOGY_USER / TOPOLOGY_PASSWORD."""
    user, password = f"topology-test-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    api.put("users", user, body={"password": password, "tags": "administrator"})
    api.put("vhosts", vhost)
    for where in (vhost, "/"):
        api.put("permissions", where, user, body={"configure": ".*", "write": ".*", "read": ".*"})
    monkeypatch.setenv("TOPOLOGY_USER", user)
    monkeypatch.setenv("TOPOLOGY_PASSWORD", password)
    yield user, password
    api.delete("users", user)


def test_no_output_format_plan_file_or_error_shows_a_secret(run, write, vhost, secret_user, monkeypatch, tmp_path):
    user, password = secret_user
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("HOOK_TOKEN", token)
    path = write(HOOKS.format(vhost=vhost))
    plan_file = str(tmp_path / "plan.json")
    outputs = []

    def call(*args: str, code: int | None = 0):
        result = run(*args)
        outputs.append(result.out + result.err)
        if code is not None:
            assert result.code == code, (args, result.out, result.err)
        return result

    call("validate", path)
    call("plan", path)
    call("plan", path, "--format", "json")
    call("plan", path, "--out", plan_file)
    saved = Path(plan_file).read_text(encoding="utf-8")
    outputs.append(saved)
    assert json.loads(saved)["secrets"] == ["HOOK_TOKEN"]
    call("apply", "--plan", plan_file, "--auto-approve")
    for output_format in ("text", "json", "markdown", "junit"):
        call("drift", path, "--format", output_format)
    call("apply", path, "--auto-approve")
    # errors: a wrong AMQP URL holding the password, a refused login, a saved plan without its secret
    call("apply", path, "--auto-approve", "--amqp-url", f"amqp://{user}:{password}@127.0.0.1:1/", code=1)
    monkeypatch.setenv("TOPOLOGY_PASSWORD", password + "-wrong")
    call("plan", path, code=1)
    monkeypatch.setenv("TOPOLOGY_PASSWORD", password)
    call("plan", path, "--url", f"http://{user}:{password}@127.0.0.1:15672", code=1)
    monkeypatch.delenv("HOOK_TOKEN")
    missing = call("apply", "--plan", plan_file, "--auto-approve", code=1)
    assert "needs the secret variable HOOK_TOKEN" in missing.err

    everything = "\n".join(outputs)
    assert token not in everything
    assert password not in everything
    assert "***" in everything  # redacted, not merely absent


def test_the_secret_reaches_the_broker(run, write, vhost, api, monkeypatch):
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("HOOK_TOKEN", token)
    path = write(HOOKS.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    [binding] = [b for b in api.get("bindings", vhost) if b["source"] == "hooks"]
    assert binding["arguments"]["token"] == token


def test_export_writes_a_secret_variable_found_on_the_broker_as_the_variable(run, write, vhost, monkeypatch, tmp_path):
    """A secret variable used as a routing key (and in a queue's name) is on the broker as its value;
    export writes the variable instead, and the files plan to no change with it set."""
    token = f"rk-{uuid.uuid4().hex}"
    monkeypatch.setenv("ROUTE_SECRET", token)
    path = write(f"""
vhosts:
  {vhost}:
    exchanges:
      hooks: {{type: direct}}
    queues:
      "inbox.${{ROUTE_SECRET}}": {{}}
    bindings:
      - {{source: hooks, destination: "inbox.${{ROUTE_SECRET}}", routing_key: "orders.${{ROUTE_SECRET}}.$${{x}}"}}
""")
    assert run("apply", path, "--auto-approve").code == 0
    out = tmp_path / "exported"
    result = run("export", "--out", str(out), "--vhost", vhost, "--no-users")
    assert result.code == 0, result.err
    text = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*.yaml"))
    assert token not in text and token not in result.out + result.err
    assert "orders.${ROUTE_SECRET}.$${x}" in text and "inbox.${ROUTE_SECRET}" in text
    assert "ROUTE_SECRET: a secret variable" in result.out
    assert run("plan", str(out), "--detailed-exitcode").code == 0


def test_export_never_writes_the_management_password(run, api, vhost, secret_user, monkeypatch, tmp_path):
    """A name that holds the management password stops the export before any file is written, whether
    the password came from TOPOLOGY_PASSWORD or the command line (it is never written as a variable)."""
    user, password = secret_user
    api.put("queues", vhost, f"q-{password}", body={"durable": True})
    for args in ((), ("--password", password)):
        if args:
            monkeypatch.delenv("TOPOLOGY_PASSWORD")
        out = tmp_path / f"out{len(args)}"
        result = run("export", "--out", str(out), "--vhost", vhost, "--no-users", *args)
        assert result.code == 1, result.out
        assert "holds a secret that is in no secret variable" in result.err and password not in result.err
        assert not list(out.rglob("*.yaml"))


def test_a_saved_plan_is_refused_under_another_value_of_its_secret(run, write, vhost, api, monkeypatch, tmp_path):
    """The plan names the secret variable, never its value; applied under another value it would set
    a value nobody planned (and report success), so it is refused; under the same value it applies."""
    path = write(HOOKS.format(vhost=vhost))
    planned = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("HOOK_TOKEN", planned)
    plan_file = str(tmp_path / "plan.json")
    assert run("plan", path, "--out", plan_file).code == 0
    saved = Path(plan_file).read_text(encoding="utf-8")
    assert planned not in saved and list(json.loads(saved)["secret_checks"]) == ["HOOK_TOKEN"]
    monkeypatch.setenv("HOOK_TOKEN", f"tok-{uuid.uuid4().hex}")
    refused = run("apply", "--plan", plan_file, "--auto-approve")
    assert refused.code == 1
    assert "another value of the secret variable HOOK_TOKEN" in refused.err
    assert vhost not in {v["name"] for v in api.get("vhosts")}  # nothing was changed
    monkeypatch.setenv("HOOK_TOKEN", planned)
    applied = run("apply", "--plan", plan_file, "--auto-approve")
    assert applied.code == 0, applied.err
    [binding] = [b for b in api.get("bindings", vhost) if b["source"] == "hooks"]
    assert binding["arguments"]["token"] == planned
