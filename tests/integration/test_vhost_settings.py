"""Vhost tracing and limits, and global parameters, against the real broker."""

from __future__ import annotations

import uuid

import pika
import pytest

from tests.conftest import connect

pytestmark = pytest.mark.broker


@pytest.fixture
def parameter(api):
    name = f"topology-test-{uuid.uuid4().hex[:8]}"
    yield name
    api.delete("global-parameters", name)


def test_vhost_limits_are_applied_enforced_changed_and_removed(run, write, vhost, api):
    path = write(f"""
        vhosts:
          {vhost}:
            tracing: true
            limits: {{max-queues: 2, max-connections: 5}}
            queues:
              a: {{}}
              b: {{}}
        """)
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    assert api.get("vhosts", vhost)["tracing"] is True
    assert api.get("vhost-limits", vhost)[0]["value"] == {"max-queues": 2, "max-connections": 5}
    assert "No changes." in run("plan", path).out
    connection = connect(vhost)
    try:  # the broker enforces the limit: a third queue is refused
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            connection.channel().queue_declare("c")
        assert refused.value.reply_code == 406 and "queue limit" in refused.value.reply_text
    finally:
        connection.close()

    changed = write(f"""
        vhosts:
          {vhost}:
            tracing: false
            limits: {{max-queues: 3}}
            queues:
              a: {{}}
              b: {{}}
        """, name="changed.yaml")
    plan = run("plan", changed)
    assert "limits.max-queues: 2 -> 3" in plan.out and "limits.max-connections: 5 -> (none)" in plan.out
    assert "tracing: true -> false" in plan.out
    assert run("apply", changed, "--auto-approve").code == 0
    assert api.get("vhost-limits", vhost)[0]["value"] == {"max-queues": 3}
    assert api.get("vhosts", vhost)["tracing"] is False


def test_omitted_vhost_settings_are_left_as_they_are(run, write, vhost, api):
    api.put("vhosts", vhost, body={"tracing": True})
    api.put("vhost-limits", vhost, "max-queues", body={"value": 7})
    path = write(f"vhosts:\n  {vhost}:\n    queues:\n      a: {{}}\n")
    assert run("apply", path, "--auto-approve").code == 0
    assert api.get("vhosts", vhost)["tracing"] is True
    assert api.get("vhost-limits", vhost)[0]["value"] == {"max-queues": 7}


def test_a_global_parameter_is_set_read_back_and_updated(run, write, vhost, parameter, api):
    path = write(f"""
        vhosts:
          {vhost}: {{}}
        global_parameters:
          {parameter}: {{region: eu-1, weight: 3}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    assert api.get("global-parameters", parameter)["value"] == {"region": "eu-1", "weight": 3}
    assert "No changes." in run("plan", path).out
    changed = write(f"""
        vhosts:
          {vhost}: {{}}
        global_parameters:
          {parameter}: {{region: eu-2, weight: 3}}
        """, name="changed.yaml")
    plan = run("plan", changed)
    assert f"~ global_parameter {parameter}" in plan.out and "value.region: eu-1 -> eu-2" in plan.out
    assert run("apply", changed, "--auto-approve").code == 0
    assert api.get("global-parameters", parameter)["value"]["region"] == "eu-2"
    # the broker's own global parameters are listed, never changed
    assert "? global_parameter internal_cluster_id  (never pruned: internal to the broker)" in plan.out


def test_operator_policies_are_applied_updated_in_place_and_pruned(run, write, vhost, api):
    path = write(f"""
        vhosts:
          {vhost}:
            queues:
              orders: {{}}
            operator_policies:
              guard: {{pattern: ".*", apply_to: queues, priority: 1, definition: {{max-length: 50000}}}}
        """)
    assert run("apply", path, "--auto-approve").code == 0
    [stored] = api.get("operator-policies", vhost)
    assert (stored["name"], stored["definition"]) == ("guard", {"max-length": 50000})
    assert "No changes." in run("plan", path).out
    api.put("operator-policies", vhost, "by-hand", body={"pattern": "^x$", "definition": {"max-length": 1}})
    changed = write(f"""
        vhosts:
          {vhost}:
            queues:
              orders: {{}}
            operator_policies:
              guard: {{pattern: ".*", apply_to: queues, priority: 1, definition: {{max-length: 100}}}}
        """, name="changed.yaml")
    plan = run("plan", changed)
    assert "~ operator_policy guard" in plan.out and "definition.max-length: 50000 -> 100" in plan.out
    assert f"? operator_policy {vhost}/by-hand" in plan.out
    assert run("apply", changed, "--prune", "--auto-approve").code == 0
    assert [(p["name"], p["definition"]) for p in api.get("operator-policies", vhost)] == [("guard", {"max-length": 100})]


def test_a_key_operator_policies_do_not_allow_is_a_located_error(run, write, vhost):
    path = write(f"""
        vhosts:
          {vhost}:
            operator_policies:
              guard: {{pattern: ".*", definition: {{queue-mode: lazy}}}}
        """)
    refused = run("validate", path)
    assert refused.code == 1 and "queue-mode is not allowed in an operator policy" in refused.err


def test_operator_policies_of_a_vhost_that_declares_none_are_left_alone(run, write, vhost, api):
    other = f"{vhost}-other"
    api.put("vhosts", other)
    try:
        api.put("operator-policies", other, "cap", body={"pattern": ".*", "definition": {"max-length": 9}})
        path = write(f"""
            vhosts:
              {vhost}:
                operator_policies:
                  guard: {{pattern: ".*", definition: {{max-length: 100}}}}
              {other}: {{}}
            """)
        assert run("apply", path, "--prune", "--auto-approve").code == 0
        assert [p["name"] for p in api.get("operator-policies", other)] == ["cap"]
    finally:
        api.delete("vhosts", other)


def test_undeclared_global_parameters_are_pruned_where_the_files_name_the_section(run, write, vhost, parameter, api):
    import json

    api.put("global-parameters", parameter, body={"name": parameter, "value": "stray"})
    kept = {p["name"]: p["value"] for p in api.get("global-parameters")
            if p["name"] not in (parameter, "internal_cluster_id", "cluster_name")}
    # the broker's other parameters are declared as they are, so the test deletes only its own
    declared = json.dumps(kept)
    silent = write(f"vhosts:\n  {vhost}: {{}}\n", name="silent.yaml")
    assert parameter not in run("plan", silent, "--prune").out  # the files name no global parameters
    path = write(f"vhosts:\n  {vhost}: {{}}\nglobal_parameters: {declared}\n")
    plan = run("plan", path)
    assert f"? global_parameter {parameter}\n" in plan.out
    assert "? global_parameter internal_cluster_id  (never pruned: internal to the broker)" in plan.out
    pruned = json.loads(run("plan", path, "--prune", "--format", "json").out)
    assert [(c["action"], c["kind"], c["name"]) for c in pruned["changes"] if c["kind"] != "vhost"] == [
        ("delete", "global_parameter", parameter)]
    assert run("apply", path, "--prune", "--auto-approve").code == 0
    names = {p["name"] for p in api.get("global-parameters")}
    assert parameter not in names and "internal_cluster_id" in names
