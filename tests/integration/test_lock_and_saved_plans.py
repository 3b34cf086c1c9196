"""The apply lock, saved plans, dry runs and confirmation, against the real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests

from tests.conftest import BROKER_AUTH, BROKER_URL, ROOT, amqp_uri

pytestmark = pytest.mark.broker

SHOP = """
vhosts:
  {vhost}:
    exchanges:
      orders: {{type: topic}}
    queues:
      orders.created: {{message_ttl: 1m}}
    bindings:
      - {{source: orders, destination: orders.created, routing_key: "order.created.#"}}
    policies:
      limits: {{pattern: "^orders\\\\.", apply_to: queues, definition: {{max-length: 1000}}}}
"""


def amqp():
    from topology.broker.amqp import Amqp

    return Amqp(amqp_uri(), *BROKER_AUTH, timeout=10)


def held_lock(*vhosts: str, cluster: bool = False, lock_vhost: str = ""):
    """Take the apply locks of ``vhosts`` (and the cluster-wide one) in this process, as another
    apply would; in ``lock_vhost`` when given (a test's own, so other applies never see it)."""
    from topology.broker.amqp import Amqp, ApplyLock
    from topology.locks import CLUSTER, vhost_key

    lock = ApplyLock(Amqp(amqp_uri(lock_vhost), *BROKER_AUTH, timeout=10) if lock_vhost else amqp())
    lock.acquire([vhost_key(v) for v in vhosts] + ([CLUSTER] if cluster else []), timeout=30)
    return lock


def cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "topology", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **(env or {})},
    )


# -- the apply lock ------------------------------------------------------------------


def test_a_second_apply_fails_at_once_saying_who_holds_the_lock(run, write, vhost, api):
    path = write(SHOP.format(vhost=vhost))
    lock = held_lock(vhost)
    try:
        result = run("apply", path, "--auto-approve")
    finally:
        lock.release()
    assert result.code == 3, result.err
    line = result.err.strip().splitlines()[-1]
    assert f"the apply lock of vhost {vhost!r}" in line and "is held by" in line
    assert "waiting" not in result.err  # without --lock-timeout it does not wait
    assert f"pid {os.getpid()}" in line and lock.identity["host"] in line and lock.identity["user"] in line
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404  # nothing was changed
    # the lock connection carries who holds it in its client properties
    assert lock.identity["pid"] == os.getpid()


def test_the_lock_connection_names_its_holder_in_client_properties(api, vhost):
    lock = held_lock(vhost)
    try:
        deadline = time.monotonic() + 15
        owner = None
        while time.monotonic() < deadline and not owner:  # the statistics come a moment later
            owner = api.get("queues", "/", f"topology.apply-lock.vhost:{vhost}").get("owner_pid_details")
            time.sleep(0.3)
        assert owner, "the broker never reported the lock queue's owner"
        properties = api.get("connections", owner["name"])["client_properties"]
    finally:
        lock.release()
    assert properties["connection_name"] == "topology apply lock"
    assert properties["topology"]["pid"] == os.getpid()
    assert properties["topology"]["host"] and properties["topology"]["user"]


def test_lock_timeout_waits_for_the_holder_saying_who_holds_it(run, write, vhost):
    path = write(SHOP.format(vhost=vhost))
    lock = held_lock(vhost)
    releaser = threading.Timer(1.5, lock.release)
    releaser.start()
    try:
        result = run("apply", path, "--auto-approve", "--lock-timeout", "30")
    finally:
        releaser.join()
    assert result.code == 0, result.err
    assert "Apply complete: 5 change(s)" in result.out
    waiting = [line for line in result.err.splitlines() if "waiting for the apply lock" in line]
    assert waiting and waiting[0].startswith(f"waiting for the apply lock of vhost {vhost!r}")
    assert f"held by {lock.identity['user']}@{lock.identity['host']} (pid {os.getpid()}" in waiting[0]


def test_lock_timeout_gives_up_with_exit_3_naming_the_vhost_and_its_holder(run, write, vhost, api):
    path = write(SHOP.format(vhost=vhost))
    lock = held_lock(vhost)
    try:
        result = run("apply", path, "--auto-approve", "--lock-timeout", "1")
    finally:
        lock.release()
    assert result.code == 3, result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith(f"waiting for the apply lock of vhost {vhost!r}") and f"pid {os.getpid()}" in lines[0]
    assert lines[-1].startswith(f"error: the apply lock of vhost {vhost!r}") and "after waiting 1s" in lines[-1]
    assert f"pid {os.getpid()}" in lines[-1]
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404  # nothing was changed


def test_applies_to_other_vhosts_of_the_broker_run_side_by_side(run, write, vhost, other_vhost, api):
    path = write(SHOP.format(vhost=vhost))
    lock = held_lock(other_vhost)  # another apply, busy in another vhost
    try:
        result = run("apply", path, "--auto-approve")  # no --lock-timeout: it would exit 3 if it had to wait
        assert result.code == 0, result.err
        assert "Apply complete: 5 change(s)" in result.out and "waiting" not in result.err
        lock.check()  # the other apply's lock is still held all along
    finally:
        lock.release()


def test_an_apply_that_touches_a_held_vhost_among_others_is_refused_naming_it(run, write, vhost, other_vhost, api):
    path = write(SHOP.format(vhost=vhost) + SHOP.format(vhost=other_vhost).replace("vhosts:\n", ""))
    lock = held_lock(other_vhost)
    try:
        result = run("apply", path, "--auto-approve")
    finally:
        lock.release()
    assert result.code == 3, result.err
    assert f"the apply lock of vhost {other_vhost!r}" in result.err.strip().splitlines()[-1]
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404  # nothing was changed, in either vhost


def test_the_broker_releases_the_lock_of_a_killed_apply(vhost):
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "from topology.broker.amqp import Amqp, ApplyLock\nfrom topology.locks import vhost_key\n"
            f"lock = ApplyLock(Amqp({amqp_uri()!r}, {BROKER_AUTH[0]!r}, {BROKER_AUTH[1]!r}))\n"
            f"lock.acquire([vhost_key({vhost!r})], 30)\nprint('held', flush=True)\nimport time\ntime.sleep(600)\n"
        )],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        from topology.broker.amqp import ApplyLock
        from topology.errors import LockHeld
        from topology.locks import vhost_key

        refused = ApplyLock(amqp())
        try:
            with pytest.raises(LockHeld):
                refused.acquire([vhost_key(vhost)], 0)
        finally:
            refused.release()  # its connection would outlive the test in this process
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = held_lock(vhost)  # raises LockHeld (after waiting) if the broker had kept the dead process's lock
    lock.release()


def test_two_concurrent_applies_exactly_one_changes_the_broker(write, vhost, api):
    path = write(SHOP.format(vhost=vhost))
    runs = [cli("apply", path, "--auto-approve", "--lock-timeout", "60") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    changed = [out for out, _ in outputs if "Apply complete: 5 change(s)" in out]
    unchanged = [out for out, _ in outputs if "No changes. The broker matches the files." in out]
    assert len(changed) == 1 and len(unchanged) == 1, outputs


def test_without_waiting_the_second_concurrent_apply_is_refused(write, vhost):
    path = write(SHOP.format(vhost=vhost))
    lock = held_lock(vhost)  # stands for a long apply in progress
    try:
        second = cli("apply", path, "--auto-approve")
        out, err = second.communicate(timeout=60)
    finally:
        lock.release()
    assert second.returncode == 3 and "another apply is running" in err


# -- saved plans -----------------------------------------------------------------------


def test_a_saved_plan_is_applied_exactly(run, write, vhost, api, tmp_path):
    path = write(SHOP.format(vhost=vhost))
    plan_file = str(tmp_path / "plan.json")
    result = run("plan", path, "--out", plan_file)
    assert result.code == 0 and f"apply --plan {plan_file}" in result.out
    document = json.loads(open(plan_file, encoding="utf-8").read())
    assert document["broker"]["cluster_name"] and document["broker"]["version"]
    assert all(len(c["fingerprint"]) == 32 for c in document["changes"])

    applied = run("apply", "--plan", plan_file, "--auto-approve")
    assert applied.code == 0, applied.err
    assert "Apply complete: 5 change(s) applied; the broker now matches the plan." in applied.out
    assert run("plan", path, "--detailed-exitcode").code == 0

    again = run("apply", "--plan", plan_file, "--auto-approve")  # everything it creates now exists
    assert again.code == 1
    assert "changed: vhost " + vhost + ": created since the plan was made" in again.err
    assert again.err.strip().splitlines()[-1].startswith("error: the plan is stale: 5 object(s)")


def test_a_stale_saved_plan_is_refused_and_changes_nothing(run, write, vhost, api, tmp_path):
    path = write(SHOP.format(vhost=vhost))
    assert run("apply", path, "--auto-approve").code == 0
    edited = write(SHOP.format(vhost=vhost).replace("max-length: 1000", "max-length: 2000"), "edited.yaml")
    plan_file = str(tmp_path / "plan.json")
    assert run("plan", edited, "--out", plan_file).code == 0
    # someone changes the policy after the plan was reviewed
    api.put("policies", vhost, "limits", body={"pattern": "^orders\\.", "apply-to": "queues",
                                               "definition": {"max-length": 5}})
    result = run("apply", "--plan", plan_file, "--auto-approve")
    assert result.code == 1
    assert f"changed: policy {vhost}/limits: changed since the plan was made (definition.max-length 1000 -> 5)" in result.err
    assert "make the plan again" in result.err.strip().splitlines()[-1]
    assert api.get("policies", vhost, "limits")["definition"] == {"max-length": 5}


def test_a_saved_plan_for_another_broker_is_refused(run, write, vhost, api, tmp_path):
    from topology.plan import plan_digest

    path = write(SHOP.format(vhost=vhost))
    plan_file = tmp_path / "plan.json"
    assert run("plan", path, "--out", str(plan_file)).code == 0
    document = json.loads(plan_file.read_text(encoding="utf-8"))
    document["broker"]["cluster_name"] = "rabbit@elsewhere"
    document["digest"] = plan_digest(document)
    plan_file.write_text(json.dumps(document), encoding="utf-8")
    result = run("apply", "--plan", str(plan_file), "--auto-approve")
    assert result.code == 1
    assert "made against cluster 'rabbit@elsewhere'" in result.err
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404


def test_an_edited_saved_plan_is_refused(run, write, vhost, tmp_path):
    path = write(SHOP.format(vhost=vhost))
    plan_file = tmp_path / "plan.json"
    assert run("plan", path, "--out", str(plan_file)).code == 0
    plan_file.write_text(plan_file.read_text(encoding="utf-8").replace('"max-length": 1000', '"max-length": 1'),
                         encoding="utf-8")
    result = run("apply", "--plan", str(plan_file), "--auto-approve")
    assert result.code == 1 and "was modified after" in result.err


def test_a_plan_file_holds_no_secret(run, write, vhost, api, tmp_path, monkeypatch):
    user, password = f"planner-{uuid.uuid4().hex[:8]}", f"s3cret-{uuid.uuid4().hex}"
    api.put("users", user, body={"password": password, "tags": "administrator"})
    try:
        api.put("permissions", "/", user, body={"configure": ".*", "write": ".*", "read": ".*"})
        monkeypatch.setenv("TOPOLOGY_USER", user)
        monkeypatch.setenv("TOPOLOGY_PASSWORD", password)
        path = write(SHOP.format(vhost=vhost))
        plan_file = tmp_path / "plan.json"
        result = run("plan", path, "--out", str(plan_file))
        assert result.code == 0, result.err
        applied = run("apply", "--plan", str(plan_file), "--auto-approve")
        assert applied.code == 0, applied.err
    finally:
        api.delete("users", user)
    text = plan_file.read_text(encoding="utf-8")
    assert password not in text and password not in result.out + result.err + applied.out + applied.err
    assert "guest" not in text  # nor any user name of the connection


def test_apply_needs_exactly_one_of_paths_and_plan(run, write, vhost, tmp_path):
    path = write(SHOP.format(vhost=vhost))
    assert "give either PATHS or --plan FILE" in run("apply", "--auto-approve").err
    both = run("apply", path, "--plan", str(tmp_path / "p.json"), "--auto-approve")
    assert both.code == 1 and "give either PATHS or --plan FILE" in both.err
    missing = run("apply", "--plan", str(tmp_path / "none.json"), "--auto-approve")
    assert missing.code == 1 and "cannot read the plan" in missing.err
    (tmp_path / "junk.json").write_text("{]", encoding="utf-8")
    junk = run("apply", "--plan", str(tmp_path / "junk.json"), "--auto-approve")
    assert junk.code == 1 and "is not a plan file" in junk.err


# -- dry run and confirmation ------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(run, write, vhost, api):
    path = write(SHOP.format(vhost=vhost))
    result = run("apply", path, "--dry-run")
    assert result.code == 0
    assert "Plan: 5 to create" in result.out and "Dry run: nothing was changed." in result.out
    assert api.session.get(api.url("vhosts", vhost)).status_code == 404


def test_confirmation_accepts_only_yes(write, vhost, api):
    """At a terminal, apply asks; anything but 'yes' cancels (run under a pseudo-terminal)."""
    import pty

    path = write(SHOP.format(vhost=vhost))
    for answer, expected in ((b"no\n", 1), (b"yes\n", 0)):
        pid, fd = pty.fork()
        if pid == 0:  # the child: the command line at a terminal
            os.chdir(ROOT)
            os.execv(sys.executable, [sys.executable, "-m", "topology", "apply", path])
        output = b""
        while b"Only 'yes' will be accepted" not in output:
            output += os.read(fd, 4096)
        os.write(fd, answer)
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == expected, output.decode()
        exists = requests.get(f"{BROKER_URL}/api/vhosts/{vhost}", auth=BROKER_AUTH, timeout=10).status_code == 200
        assert exists == (expected == 0)


def test_apply_stops_when_its_lock_connection_is_lost(api, vhost, other_vhost):
    """Every lock of an apply is held by one connection: losing it loses them all, and check() says so."""
    from topology.errors import BrokerError

    lock = held_lock(vhost, other_vhost)
    try:
        deadline = time.monotonic() + 15
        owner = None
        while time.monotonic() < deadline and not owner:
            owner = api.get("queues", "/", f"topology.apply-lock.vhost:{vhost}").get("owner_pid_details")
            time.sleep(0.3)
        assert owner
        lock.check()  # held
        api.delete("connections", owner["name"])  # as a broker restart or a network cut would
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                lock.check()
            except BrokerError as lost:
                assert "lost the apply lock" in str(lost)
                break
            time.sleep(0.2)
        else:
            pytest.fail("the lost lock was never noticed")
        # the broker drops both lock queues with the connection (RabbitMQ 4.3 on khepri a moment after
        # the connection is gone: the queues' deletion is not part of closing it)
        deadline = time.monotonic() + 15
        left = [vhost, other_vhost]
        while left and time.monotonic() < deadline:
            left = [name for name in left if api.session.get(
                api.url("queues", "/", f"topology.apply-lock.vhost:{name}")).status_code != 404]
            time.sleep(0.2)
        assert not left
    finally:
        lock.release()
