"""A created object's plan lines: every setting it is created with (as Terraform shows on create),
in text and in the Markdown comment, never a password."""

from __future__ import annotations

import markdown

from tests.conftest import load_text
from topology import redact
from topology.diff import diff
from topology.plan import Plan
from topology.render.text import render_plan, render_plan_markdown
from topology.state import State, desired_state

TOPOLOGY = """\
vhosts:
  v:
    description: the shop
    limits: {max-queues: 10}
    exchanges:
      scratch: {type: fanout, durable: false, auto_delete: true}
    queues:
      orders: {}
    policies:
      cap_orders:
        pattern: ^(a|b)_x_*
        apply_to: queues
        priority: 2
        definition: {max-length: 100, overflow: reject-publish}
users:
  svc:
    password: ${SVC_PASSWORD}
    tags: [monitoring]
    permissions:
      v: {configure: "^svc\\\\.", write: ".*", read: ".*"}
"""
SECRET = "Pa55-never-shown"


def _plan(tmp_path) -> Plan:
    desired = desired_state(load_text(tmp_path, TOPOLOGY, {"SVC_PASSWORD": SECRET}))
    return Plan(changes=diff(desired, State()).changes, vhosts=("v",))


def test_created_policies_users_permissions_and_vhosts_list_their_settings(tmp_path):
    text = render_plan(_plan(tmp_path))
    lines = text.splitlines()
    policy = lines.index("  + policy cap_orders")
    assert lines[policy + 1:policy + 6] == [
        "        pattern: ^(a|b)_x_*",
        "        apply_to: queues",
        "        priority: 2",
        "        definition.max-length: 100",
        "        definition.overflow: reject-publish",
    ]
    permission = lines.index("  + permission svc")
    assert lines[permission + 1:permission + 4] == ["        configure: ^svc\\.", "        write: .*", "        read: .*"]
    user = lines.index("  + user svc")
    assert "        tags: [\"monitoring\"]" in lines[user + 1:user + 3]
    assert "        password: set from the files (never shown)" in lines[user + 1:user + 3]
    vhost = lines.index("  + vhost v")
    assert lines[vhost + 1:vhost + 3] == ["        description: the shop", "        limits.max-queues: 10"]
    assert "  + exchange scratch  (fanout, durable=false, auto_delete=true)" in lines
    assert "  + queue orders  (classic)" in lines  # defaults are not repeated
    assert SECRET not in text and SECRET not in redact.redact(text)


def test_the_markdown_comment_shows_the_settings_as_written(tmp_path):
    document = render_plan_markdown(_plan(tmp_path))
    assert SECRET not in document
    html = markdown.markdown(document, extensions=["tables"])
    assert "<code>pattern: ^(a|b)_x_*</code>" in html.replace("\\|", "|") and "<em>" not in html
    assert "<code>definition.max-length: 100</code>" in html
    assert "<code>write: .*</code>" in html
