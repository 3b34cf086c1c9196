"""Users, passwords, limits, permissions and topic permissions against the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest

from tests.conftest import AMQP_ADDRESS, BROKER_AUTH, BROKER_URL, ROOT, connect_as, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def user(api):
    """A unique user name; the user is deleted after the test."""
    name = f"topology-test-{uuid.uuid4().hex[:8]}"
    yield name
    api.delete("users", name)


USER = """
vhosts:
  {vhost}:
    exchanges:
      events: {{type: topic}}
users:
  {user}:
    password: ${{TEST_SVC_PASSWORD}}
    tags: [monitoring]
    limits: {{max-connections: {connections}}}
    permissions:
      {vhost}: {{configure: "^orders\\\\.", write: ".*", read: ".*"}}
    topic_permissions:
      {vhost}:
        events: {{write: "^orders\\\\.", read: ".*"}}
"""


def can_log_in(vhost: str, user: str, password: str) -> bool:
    try:
        connect_as(vhost, user, password, connection_attempts=1).close()
        return True
    except pika.exceptions.ProbableAuthenticationError:
        return False


def test_a_user_is_created_read_back_and_its_unchanged_password_plans_to_nothing(run, write, vhost, user, api, monkeypatch):
    password = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("TEST_SVC_PASSWORD", password)
    path = write(USER.format(vhost=vhost, user=user, connections=10))
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    stored = api.get("users", user)
    assert stored["tags"] == ["monitoring"] and stored["limits"] == {"max-connections": 10}
    assert can_log_in(vhost, user, password)
    [permission] = [p for p in api.get("permissions") if p["user"] == user]
    assert (permission["vhost"], permission["configure"], permission["write"]) == (vhost, "^orders\\.", ".*")
    [topic] = [p for p in api.get("topic-permissions") if p["user"] == user]
    assert (topic["vhost"], topic["exchange"], topic["write"], topic["read"]) == (vhost, "events", "^orders\\.", ".*")

    assert "No changes." in run("plan", path).out
    # a new process, as CI runs it: nothing remembered between runs
    fresh = subprocess.run([sys.executable, "-m", "topology", "plan", path, "--detailed-exitcode"], cwd=ROOT,
                           capture_output=True, text=True, env={**os.environ, "TOPOLOGY_URL": BROKER_URL}, timeout=120)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert password not in applied.out + applied.err + fresh.stdout + fresh.stderr


def test_a_changed_password_is_exactly_one_change_and_never_printed(run, write, vhost, user, api, monkeypatch, tmp_path):
    old, new = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
    monkeypatch.setenv("TEST_SVC_PASSWORD", old)
    path = write(USER.format(vhost=vhost, user=user, connections=10))
    assert run("apply", path, "--auto-approve").code == 0
    hash_before = api.get("users", user)["password_hash"]

    monkeypatch.setenv("TEST_SVC_PASSWORD", new)
    outputs = []
    plan = run("plan", path, "--format", "json")
    outputs.append(plan.out + plan.err)
    [change] = json.loads(plan.out)["changes"]
    assert (change["action"], change["kind"], change["name"]) == ("update", "user", user)
    assert change["diff"] == {"password": {"before": "set", "after": "changed"}}
    text = run("plan", path, "--out", str(tmp_path / "plan.json"))
    outputs += [text.out + text.err, (tmp_path / "plan.json").read_text(encoding="utf-8")]
    assert "password: set -> changed" in text.out
    drift = run("drift", path, "--format", "junit")
    outputs.append(drift.out + drift.err)
    assert drift.code == 2

    monkeypatch.delenv("TEST_SVC_PASSWORD")
    missing = run("apply", "--plan", str(tmp_path / "plan.json"), "--auto-approve")
    assert missing.code == 1 and "TEST_SVC_PASSWORD, which is not set" in missing.err
    monkeypatch.setenv("TEST_SVC_PASSWORD", new)
    applied = run("apply", "--plan", str(tmp_path / "plan.json"), "--auto-approve")
    outputs.append(applied.out + applied.err)
    assert applied.code == 0, applied.err
    assert api.get("users", user)["password_hash"] != hash_before
    assert can_log_in(vhost, user, new) and not can_log_in(vhost, user, old)
    assert "No changes." in run("plan", path).out
    everything = "\n".join(outputs)
    assert new not in everything and old not in everything


def test_a_user_limit_is_enforced_by_the_broker(run, write, vhost, user, monkeypatch):
    password = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("TEST_SVC_PASSWORD", password)
    assert run("apply", write(USER.format(vhost=vhost, user=user, connections=1)), "--auto-approve").code == 0
    first = connect_as(vhost, user, password, connection_attempts=1)
    try:
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            connect_as(vhost, user, password, connection_attempts=1)
    finally:
        first.close()


def test_a_declared_password_hash_and_an_undeclared_password(run, write, vhost, user, api):
    from topology.passwords import password_hash

    hashed = password_hash("from-a-hash", "rabbit_password_hashing_sha512")
    path = write(f"""
        vhosts:
          {vhost}: {{}}
        users:
          {user}:
            password_hash: "{hashed}"
            hashing_algorithm: rabbit_password_hashing_sha512
            permissions:
              {vhost}: {{configure: "^$", write: "^$", read: ".*"}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    assert api.get("users", user)["password_hash"] == hashed
    assert can_log_in(vhost, user, "from-a-hash")
    assert "No changes." in run("plan", path).out
    # without a password in the files, the broker's is left as it is, even when the tags change
    path = write(f"""
        vhosts:
          {vhost}: {{}}
        users:
          {user}:
            tags: [management]
            permissions:
              {vhost}: {{configure: "^$", write: "^$", read: ".*"}}
        """, name="no-password.yaml")
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0 and "password: left as it is (none declared)" in applied.out
    assert api.get("users", user)["tags"] == ["management"] and can_log_in(vhost, user, "from-a-hash")
    assert api.get("users", user)["password_hash"] == hashed


PASSWORDLESS = """
vhosts:
  {vhost}: {{}}
users:
  {user}:
    tags: [monitoring]
    permissions:
      {vhost}: {{configure: "^$", write: ".*", read: ".*"}}
"""


def test_a_user_declared_without_a_password_is_created_without_one_and_plans_to_nothing(run, write, vhost, user, api,
                                                                                          monkeypatch):
    for name in [n for n in os.environ if n.endswith("PASSWORD") and n != "TOPOLOGY_PASSWORD"]:
        monkeypatch.delenv(name)  # no password variable is needed
    path = write(PASSWORDLESS.format(vhost=vhost, user=user))
    planned = run("plan", path)
    assert planned.code == 0, planned.err
    assert "password: none (none declared: it cannot log in with a password until one is set)" in planned.out
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    stored = api.get("users", user)  # RabbitMQ's own "no password": an empty hash
    assert stored["tags"] == ["monitoring"] and stored["password_hash"] == ""
    assert [p["vhost"] for p in api.get("permissions") if p["user"] == user] == [vhost]
    assert not can_log_in(vhost, user, "") and not can_log_in(vhost, user, "any-password")
    again = run("plan", path, "--format", "json")
    assert again.code == 0 and json.loads(again.out)["changes"] == [], again.out + again.err
    assert "No changes." in run("plan", path).out


def test_a_password_set_by_hand_on_a_user_the_files_declare_without_one_is_left_as_it_is(run, write, vhost, user,
                                                                                           api):
    api.put("users", user, body={"password": "set-by-hand", "tags": "management"})
    path = write(PASSWORDLESS.format(vhost=vhost, user=user))
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    assert "password: left as it is (none declared)" in applied.out
    assert api.get("users", user)["tags"] == ["monitoring"] and can_log_in(vhost, user, "set-by-hand")
    assert json.loads(run("plan", path, "--format", "json").out)["changes"] == []


def test_permissions_the_files_drop_are_listed_and_pruned(run, write, vhost, user, api, monkeypatch):
    monkeypatch.setenv("TEST_SVC_PASSWORD", "irrelevant-pw")
    path = write(USER.format(vhost=vhost, user=user, connections=10))
    assert run("apply", path, "--auto-approve").code == 0
    # the same user, without its permissions and topic permissions
    without = write(USER.split("    permissions:")[0].format(vhost=vhost, user=user, connections=10), name="without.yaml")
    listed = run("plan", without)
    assert f"? permission {vhost}/{user}" in listed.out and f"? topic_permission {vhost}/{user} on events" in listed.out
    assert "guest" not in listed.out.split("Unmanaged")[1]  # users the files do not declare are not theirs
    pruned = run("apply", without, "--prune", "--auto-approve")
    assert pruned.code == 0, pruned.err
    assert not [p for p in api.get("permissions") if p["user"] == user]
    assert not [p for p in api.get("topic-permissions") if p["user"] == user]
    assert [p for p in api.get("permissions") if p["user"] == "guest" and p["vhost"] == vhost]


def test_the_connected_user_keeps_its_administrator_tag(run, write, vhost, api):
    path = write(f"""
        vhosts:
          {vhost}: {{}}
        users:
          guest:
            tags: [monitoring]
        """)
    refused = run("apply", path, "--auto-approve")
    assert refused.code == 1 and "it is the user this tool is connected as" in refused.err
    assert "administrator" in api.get("users", "guest")["tags"]


def test_a_literal_password_is_refused_unless_allowed(run, write, vhost):
    path = write(f"users: {{someone: {{password: hunter2}}}}\nvhosts: {{{vhost}: {{}}}}\n")
    refused = run("validate", path)
    assert refused.code == 1 and "a literal password in a file" in refused.err and "hunter2" not in refused.err


def test_the_connected_users_permissions_and_password_are_never_changed(run, write, vhost, api):
    api.put("vhosts", vhost)
    path = write(f"""
        vhosts:
          {vhost}: {{}}
        users:
          guest:
            tags: [administrator]
            permissions:
              {vhost}: {{configure: "^$", write: "^$", read: "^$"}}
        """)
    refused = run("apply", path, "--auto-approve")
    assert refused.code == 1 and "permission of the user this tool is connected as" in refused.err
    [permission] = [p for p in api.get("permissions") if p["user"] == "guest" and p["vhost"] == vhost]
    assert permission["configure"] == ".*"


def test_manage_all_users_prunes_undeclared_users_but_never_the_connected_one_nor_a_busy_one(run, write, vhost, api):
    prefix = f"topology-test-{uuid.uuid4().hex[:8]}"
    kept, stray, busy = f"{prefix}-kept", f"{prefix}-stray", f"{prefix}-busy"
    connected = BROKER_AUTH[0]
    # the broker's other users are none of this test's business: ignored by name, so the test deletes only its own
    others = sorted(u["name"] for u in api.get("users") if u["name"] != connected)
    api.put("vhosts", vhost)
    for name in (stray, busy):
        api.put("users", name, body={"password": "pw-" + name, "tags": ""})
    api.put("permissions", vhost, busy, body={"configure": ".*", "write": ".*", "read": ".*"})
    try:
        body = f"""
            vhosts:
              {vhost}: {{}}
            users:
              {kept}: {{tags: [monitoring]}}
            ignore_users: {json.dumps(others)}
            """
        silent = write(body, name="silent.yaml")
        assert stray not in run("plan", silent, "--prune").out  # without manage_all_users, undeclared users are not listed
        path = write(body + "manage_all_users: true\n")
        plan = run("plan", path)
        assert f"? user {stray}\n" in plan.out and f"? user {busy}\n" in plan.out
        assert f"? user {connected}  (never pruned: the user this tool is connected as)" in plan.out

        connection = connect_as(vhost, busy, "pw-" + busy)
        try:
            plan = json.loads(run("plan", path, "--prune", "--format", "json").out)
            deletions = {c["name"]: c for c in plan["changes"] if c["action"] == "delete"}
            assert set(deletions) == {stray, busy} and connected not in deletions
            assert deletions[busy]["hazards"] and "1 connection(s) are open as this user" in deletions[busy]["hazards"][0]
            refused = run("apply", path, "--prune", "--auto-approve")
            assert refused.code == 1 and "connection(s) are open as this user" in refused.err
            assert {stray, busy} <= {u["name"] for u in api.get("users")}  # nothing was changed
        finally:
            connection.close()
        wait_until(lambda: not api.get("connections", "username", busy), "the connection closing")
        # a saved plan made while nobody was connected, applied once someone is: refused before any write
        saved = str(Path(path).with_name("plan.json"))
        queue_file = write(body.replace(f"{vhost}: {{}}", f"{vhost}: {{queues: {{late: {{}}}}}}")
                           + "manage_all_users: true\n", name="queue.yaml")
        assert run("plan", queue_file, "--prune", "--out", saved).code == 0
        connection = connect_as(vhost, busy, "pw-" + busy)
        try:
            refused = run("apply", "--plan", saved, "--auto-approve")
            assert refused.code == 1 and "1 connection(s) are open as this user; not deleted" in refused.err
            assert "0 of" in refused.err  # nothing was applied
            assert "late" not in {q["name"] for q in api.get("queues", vhost)}
        finally:
            connection.close()
        wait_until(lambda: not api.get("connections", "username", busy), "the connection closing")
        applied = run("apply", path, "--prune", "--auto-approve")
        assert applied.code == 0, applied.err
        names = {u["name"] for u in api.get("users")}
        assert kept in names and connected in names and not {stray, busy} & names
        assert set(others) <= names
        assert "No changes." in run("plan", path, "--prune").out
    finally:
        for name in (kept, stray, busy):
            api.delete("users", name)


def test_a_user_a_declared_shovel_connects_as_is_never_pruned(run, write, vhost, api, monkeypatch):
    name = f"topology-test-{uuid.uuid4().hex[:8]}-mover"
    api.put("users", name, body={"password": "pw-mover", "tags": ""})
    try:
        others = sorted(u["name"] for u in api.get("users") if u["name"] not in (name, BROKER_AUTH[0]))
        monkeypatch.setenv("MOVER_PASSWORD", "pw-mover")
        path = write(f"""
            vhosts:
              {vhost}:
                queues:
                  q: {{}}
                shovels:
                  s:
                    source_uri: "amqp://{name}:${{MOVER_PASSWORD}}@{AMQP_ADDRESS}/{vhost}"
                    source_queue: q
                    destination_uri: amqp://
                    destination_queue: q2
            manage_all_users: true
            ignore_users: {json.dumps(others)}
            """)
        plan = json.loads(run("plan", path, "--prune", "--format", "json").out)
        assert not [c for c in plan["changes"] if c["kind"] == "user"]
        protected = {o["name"]: o["protected"] for o in plan["unmanaged"] if o["kind"] == "user"}
        assert protected[name] == "a declared shovel or federation upstream connects as it"
        assert protected[BROKER_AUTH[0]] == "the user this tool is connected as"
    finally:
        api.delete("users", name)
