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
