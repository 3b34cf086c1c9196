"""Unit tests for the high-availability checks, the drift report and its four formats, and redaction."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topology import redact
from topology.broker.live import BrokerInfo
from topology.diff import Change, FieldChange
from topology.drift import build_report
from topology.ha import check_queues, expected_mirrors
from topology.matching import contest
from topology.plan import Plan, load_saved_plan, plan_digest, saved_plan
from topology.render.drift import render, render_many_junit
from topology.kinds import BindingState, PolicyState, QueueState, VhostState
from topology.state import State

NODES = ["rabbit@a", "rabbit@b", "rabbit@c"]


def winners(queue, queue_type, policies, version=(3, 10, 8)):
    return contest(policies, queue, queue_type, version).winners


def policy(name: str, pattern: str = ".*", priority: int = 0, apply_to: str = "all", **definition) -> PolicyState:
    return PolicyState(vhost="v", policy=name, pattern=pattern, apply_to=apply_to, priority=priority,
                       definition={k.replace("_", "-"): v for k, v in definition.items()} or {"message-ttl": 1})


def entry(name: str, **fields) -> dict:
    base = {"name": name, "type": "classic", "state": "running", "node": "rabbit@a", "policy": None}
    base.update(fields)
    return base


# --------------------------------------------------------------------------- policy resolution


def test_the_highest_priority_matching_policy_wins():
    policies = [policy("low", "^orders", 1), policy("high", "^orders\\.", 5), policy("other", "^payments", 9)]
    assert [p.policy for p in winners("orders.created", "classic", policies)] == ["high"]
    assert [p.policy for p in winners("orders", "classic", policies)] == ["low"]
    assert winners("invoices", "classic", policies) == []


def test_apply_to_and_queue_type_decide_applicability_as_rabbitmq_does():
    mirroring = policy("ha", ".*", 10, ha_mode="all")
    ttl = policy("ttl", ".*", 1, message_ttl=1000)
    exchanges = policy("ex", ".*", 20, apply_to="exchanges", alternate_exchange="x")
    # a quorum queue does not support ha-mode: that policy does not apply at all, the lower one wins
    assert [p.policy for p in winners("q", "quorum", [mirroring, ttl, exchanges])] == ["ttl"]
    assert [p.policy for p in winners("q", "classic", [mirroring, ttl, exchanges])] == ["ha"]
    assert winners("q", "stream", [mirroring, ttl]) == []  # streams support neither key
    assert [p.policy for p in winners("q", "quorum", [policy("cq", apply_to="classic_queues"), ttl])] == ["ttl"]


def test_ties_are_all_accepted_and_reported():
    policies = [policy("a", priority=3), policy("b", priority=3)]
    health = check_queues("v", [entry("q", policy="b")], policies, NODES, ["q"])
    assert health.findings == [] and "tie" in health.notes[0]


def test_a_policy_set_outside_the_tool_is_a_finding():
    health = check_queues("v", [entry("q", policy="hotfix")], [policy("mine", "^q$", 1)], NODES, ["q"], ["mine"])
    [finding] = health.findings
    assert finding.check == "policy" and finding.expected == "mine" and finding.actual == "hotfix"
    assert "no file declares" in finding.message


def test_no_policy_in_effect_where_one_is_expected_and_the_reverse():
    [missing] = check_queues("v", [entry("q")], [policy("mine")], NODES, ["q"], ["mine"]).findings
    assert missing.actual is None and "no policy is in effect" in missing.message
    [extra] = check_queues("v", [entry("q", policy="mine")], [], NODES, ["q"], []).findings
    assert extra.expected is None and extra.actual == "mine"


def test_statistics_that_disagree_with_the_brokers_own_policies_are_stale():
    mine, hotfix = policy("mine", "^q$", 1), policy("hotfix", ".*", 9)
    fresh = check_queues("v", [entry("q", policy="hotfix")], [mine], NODES, ["q"], ["mine"], [mine, hotfix])
    assert fresh.stale == [] and len(fresh.findings) == 1  # the broker really gives it hotfix
    stale = check_queues("v", [entry("q", policy="mine")], [mine], NODES, ["q"], ["mine"], [mine, hotfix])
    assert stale.stale == [("v", "q")]  # hotfix was just added: the statistics are behind
    # right after an apply adds the files' policy, the statistics still show none: listed as not
    # checked, never counted as a finding (drift would exit 2 on its own apply)
    behind = check_queues("v", [entry("q")], [mine], NODES, ["q"], ["mine"], [mine])
    assert behind.stale == [("v", "q")] and behind.findings == []


def test_only_declared_queues_with_statistics_are_checked():
    entries = [entry("q", policy="x"), entry("stray", policy="x"), {"name": "new", "type": "classic"},
               entry("excl", exclusive=True, policy="x")]
    health = check_queues("v", entries, [], NODES, ["q", "new", "excl"])
    assert [f.queue for f in health.findings] == ["q"]
    assert health.unknown == [("v", "new")] and ("v", "stray") not in health.checked


# --------------------------------------------------------------------------- mirrors and members


def test_unsynchronised_mirrors_are_found():
    queue = entry("q", policy="ha", effective_policy_definition={"ha-mode": "all"},
                  slave_nodes=["rabbit@b", "rabbit@c"], synchronised_slave_nodes=["rabbit@b"])
    [finding] = check_queues("v", [queue], [policy("ha", ha_mode="all")], NODES, ["q"]).findings
    assert finding.check == "mirrors" and "1 of 2 mirror(s) not synchronised: rabbit@c" in finding.message


def test_missing_mirrors_are_found():
    queue = entry("q", policy="ha", effective_policy_definition={"ha-mode": "exactly", "ha-params": 3},
                  slave_nodes=["rabbit@b"], synchronised_slave_nodes=["rabbit@b"])
    [finding] = check_queues("v", [queue], [policy("ha", ha_mode="exactly")], NODES, ["q"]).findings
    assert (finding.expected, finding.actual) == (2, 1)


def test_expected_mirrors():
    assert expected_mirrors({"ha-mode": "all"}, "rabbit@a", NODES) == 2
    assert expected_mirrors({"ha-mode": "exactly", "ha-params": 2}, "rabbit@a", NODES) == 1
    assert expected_mirrors({"ha-mode": "exactly", "ha-params": 5}, "rabbit@a", NODES) == 2
    assert expected_mirrors({"ha-mode": "nodes", "ha-params": ["rabbit@a", "rabbit@b", "rabbit@x"]}, "rabbit@a", NODES) == 1
    assert expected_mirrors({"ha-mode": "nodes", "ha-params": ["rabbit@b", "rabbit@c"]}, "rabbit@a", NODES) == 1
    assert expected_mirrors({}, "rabbit@a", NODES) is None


def test_quorum_members_offline_or_fewer_than_declared():
    offline = entry("q", type="quorum", members=NODES, online=["rabbit@a", "rabbit@b"])
    small = entry("s", type="quorum", members=["rabbit@a"], online=["rabbit@a"],
                  arguments={"x-quorum-initial-group-size": 3})
    healthy = entry("h", type="quorum", members=NODES, online=NODES)
    health = check_queues("v", [offline, small, healthy], [], NODES, ["q", "s", "h"])
    found = {f.queue: f for f in health.findings}
    assert set(found) == {"q", "s"}
    assert "2 of 3 quorum member(s) online" in found["q"].message and "offline: rabbit@c" in found["q"].message
    assert "1 of 3" in found["s"].message and "declared group size on 3 node(s) is 3" in found["s"].message


def test_the_group_size_is_capped_at_the_cluster_size_as_rabbitmq_does():
    small = entry("s", type="quorum", members=["rabbit@a"], online=["rabbit@a"],
                  arguments={"x-quorum-initial-group-size": 3})
    assert check_queues("v", [small], [], ["rabbit@a"], ["s"], cluster_size=1).findings == []
    five = entry("f", type="quorum", members=NODES, online=NODES, arguments={"x-quorum-initial-group-size": 5})
    assert check_queues("v", [five], [], NODES, ["f"], cluster_size=3).findings == []
    # a stopped node still counts: the queue should have a member there
    [finding] = check_queues("v", [small], [], ["rabbit@a"], ["s"], cluster_size=2).findings
    assert (finding.expected, finding.actual) == (2, 1)


def test_a_streams_policy_initial_cluster_size_wins_over_its_argument():
    stream = entry("st", type="stream", members=["rabbit@a", "rabbit@b"], online=["rabbit@a", "rabbit@b"],
                   arguments={"x-initial-cluster-size": 2}, effective_policy_definition={"initial-cluster-size": 3})
    [finding] = check_queues("v", [stream], [], NODES, ["st"], cluster_size=3).findings
    assert (finding.expected, finding.actual) == (3, 2)


def test_which_keys_a_queue_type_supports_depends_on_the_broker_version():
    sac = policy("sac", priority=9, single_active_consumer=True)
    ttl = policy("ttl", priority=1, message_ttl=1000)
    assert [p.policy for p in winners("q", "quorum", [sac, ttl], (3, 13, 7))] == ["ttl"]
    assert [p.policy for p in winners("q", "quorum", [sac, ttl], (4, 2, 0))] == ["sac"]
    locator = policy("locator", priority=9, queue_leader_locator="balanced")
    assert [p.policy for p in winners("q", "classic", [locator, ttl], (3, 13, 7))] == ["ttl"]
    assert [p.policy for p in winners("q", "classic", [locator, ttl], (4, 0, 0))] == ["locator"]


# --------------------------------------------------------------------------- the report and its formats


def report_of(**kwargs):
    desired = State()
    desired.vhosts["v"] = VhostState(vhost="v")
    in_sync = QueueState(vhost="v", queue="ok", type="classic", arguments={})
    declared = QueueState(vhost="v", queue="orders|<&>", type="classic", arguments={"x-message-ttl": 1000})
    live = QueueState(vhost="v", queue="orders|<&>", type="classic", arguments={"x-message-ttl": 5})
    stray = BindingState(vhost="v", source="ex", destination="ok", destination_type="queue", routing_key="old", arguments={})
    desired.add(in_sync)
    desired.add(declared)
    changes = (
        Change("replace", live, declared, {"arguments.x-message-ttl": FieldChange(5, 1000)}, "why"),
        Change("delete", stray, None, {}, "not declared"),
    )
    orphan = QueueState(vhost="v", queue="orphan", type="classic", arguments={})
    plan = Plan(changes=changes, unmanaged=(orphan,), vhosts=("v",), broker=BrokerInfo("http://b:15672", "3.10.8", "c"))
    health = check_queues("v", [entry("ok", policy="hotfix")], [], NODES, ["ok"])
    return build_report(plan, desired, health, **kwargs)


def test_the_report_lists_each_object_drift_orphans_and_findings():
    report = report_of()
    statuses = {(o.kind, o.name): o.status for o in report.objects}
    assert statuses == {("vhost", "v"): "in_sync", ("queue", "ok"): "in_sync", ("queue", "orders|<&>"): "changed",
                        ("binding", "ex -> queue ok [old]"): "undeclared"}
    assert report.drifted and len(report.ha_findings) == 1 and len(report.orphans) == 1


def test_orphans_count_only_when_asked():
    empty = Plan(changes=(), unmanaged=(QueueState(vhost="v", queue="o", type="classic", arguments={}),), vhosts=("v",))
    desired = State()
    desired.vhosts["v"] = VhostState(vhost="v")
    from topology.ha import QueueHealth

    assert not build_report(empty, desired, QueueHealth()).drifted
    assert build_report(empty, desired, QueueHealth(), fail_on_orphans=True).drifted


def test_json_format_parses_and_holds_everything():
    document = json.loads(render(report_of(), "json"))
    assert document["drifted"] is True and document["summary"]["changed"] == 1
    assert document["summary"]["orphans"] == 1 and document["summary"]["ha_findings"] == 1
    changed = next(o for o in document["objects"] if o["status"] == "changed")
    assert changed["diff"] == {"arguments.x-message-ttl": {"live": 5, "declared": 1000}}
    assert document["high_availability"]["findings"][0]["actual"] == "hotfix"


def test_junit_format_parses_with_a_case_per_object_and_failures_where_drifted():
    root = ElementTree.fromstring(render(report_of(), "junit"))
    assert root.tag == "testsuites" and root.get("failures") == "3"  # changed, undeclared, ha finding
    cases = root.findall(".//testcase")
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {"orders|<&>", "ex -> queue ok [old]", "ok"}
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert [c.get("name") for c in skipped] == ["orphan"]
    root = ElementTree.fromstring(render(report_of(fail_on_orphans=True), "junit"))
    assert root.get("failures") == "4" and {s.get("skipped") for s in root.findall("testsuite")} == {"0"}


def test_junit_for_several_targets_is_one_document():
    first, second = report_of(), report_of()
    object.__setattr__(first, "target", "dev")
    object.__setattr__(second, "target", "prod")
    root = ElementTree.fromstring(render_many_junit([("dev", first, None, []), ("prod", second, None, []),
                                                     ("qa", None, "2 problems found", ["a.yaml:3: x", "a.yaml:4: y"])]))
    names = [s.get("name") for s in root.findall("testsuite")]
    assert "dev: vhost v" in names and "prod: high availability" in names and root.get("failures") == "6"
    assert "qa: error" in names and root.get("errors") == "1"
    assert root.find(".//error").text == "a.yaml:3: x\na.yaml:4: y"


def test_markdown_format_is_a_table_of_the_drifted_objects_with_cells_escaped():
    text = render(report_of(), "markdown")
    assert "| queue | `v/orders\\|<&>` | changed |" in text
    assert "#### High availability" in text and "hotfix" in text and "#### Orphans (1, not counted as drift)" in text
    assert "`v/ok` | in_sync" not in text  # only drifted objects in the table


def test_text_format_in_sync():
    plan = Plan(changes=(), vhosts=("v",), broker=BrokerInfo("http://b:15672", "3.10.8", "c"))
    desired = State()
    desired.vhosts["v"] = VhostState(vhost="v")
    from topology.ha import QueueHealth

    text = render(build_report(plan, desired, QueueHealth()), "text")
    assert text.endswith("In sync: 0 of 1 managed object(s) drifted, 0 high-availability finding(s), 0 orphan(s).")


# --------------------------------------------------------------------------- redaction


@pytest.fixture
def secrets():
    redact.forget_all()
    yield redact
    redact.forget_all()


def test_redact_masks_registered_secrets_and_url_passwords(secrets):
    secrets.register("hunter2")
    assert secrets.redact("password hunter2 in amqp://svc:p%40ss@host:5672/v") == "password *** in amqp://svc:***@host:5672/v"
    secrets.register_url("amqp://svc:p%40ss@host/")
    assert secrets.redact("it was p@ss") == "it was ***"


def saved_with_secret(secrets) -> dict:
    """A saved plan (as read back from its file) creating a queue whose argument holds the value of
    secret variable HOOK_TOKEN, ``s3cr3t``."""
    secrets.register("s3cr3t", "HOOK_TOKEN")
    queue = QueueState(vhost="v", queue="q", type="classic", arguments={"x-note": "token=s3cr3t"})
    plan = Plan(changes=(Change("create", None, queue, {}, "new"),), vhosts=("v",),
                broker=BrokerInfo("http://b:15672", "3.10.8", "c"))
    return json.loads(json.dumps(saved_plan(plan)))


def test_saved_plans_name_the_secret_variable_and_read_it_back(secrets, monkeypatch):
    document = saved_with_secret(secrets)
    assert "s3cr3t" not in json.dumps(document) and document["secrets"] == ["HOOK_TOKEN"]
    assert document["changes"][0]["after"]["arguments"]["x-note"] == "token=${HOOK_TOKEN}"
    monkeypatch.setenv("HOOK_TOKEN", "s3cr3t")
    loaded = load_saved_plan(document, "plan.json")
    assert loaded.changes[0].after.arguments["x-note"] == "token=s3cr3t"
    monkeypatch.delenv("HOOK_TOKEN")
    from topology.errors import TopologyError

    with pytest.raises(TopologyError, match="needs the secret variable HOOK_TOKEN"):
        load_saved_plan(document, "plan.json")


def test_a_saved_plan_is_refused_under_another_value_or_without_checks(secrets, monkeypatch):
    from topology.errors import PlanRefused

    document = saved_with_secret(secrets)
    [check] = document["secret_checks"].values()
    assert check.startswith(("scrypt$", "pbkdf2-sha256$")) and "s3cr3t" not in check
    monkeypatch.setenv("HOOK_TOKEN", "s3cr3t-rotated")
    with pytest.raises(PlanRefused, match="another value of the secret variable HOOK_TOKEN"):
        load_saved_plan(document, "plan.json")
    older = {k: v for k, v in document.items() if k != "secret_checks"}
    older["digest"] = plan_digest(older)
    with pytest.raises(PlanRefused, match="older version of the tool"):
        load_saved_plan(older, "plan.json")
    # the fallback where Python has no scrypt
    salt = bytes(16)
    pbkdf2 = {"HOOK_TOKEN": f"pbkdf2-sha256${salt.hex()}${redact._check_of('s3cr3t-rotated', salt, 'pbkdf2-sha256')}"}
    assert redact.check_values(pbkdf2) is None
    assert redact.check_values({"HOOK_TOKEN": "md5$00$00"}) == "HOOK_TOKEN"


def test_escaped_forms_of_a_secret_are_masked_too(secrets):
    from xml.sax.saxutils import escape, quoteattr

    from topology.render.text import markdown_cell

    secret = 'a"b\\c<d>|e\tf'
    secrets.register(secret, "X_TOKEN")
    for shown in (json.dumps({"k": secret}), repr(secret), escape(secret), quoteattr(secret), markdown_cell(secret)):
        assert "***" in secrets.redact(shown) and "c<d" not in secrets.redact(shown).replace("***", ""), shown


def test_an_unencoded_at_sign_in_a_url_password_is_masked_whole(secrets):
    secrets.register_url("amqp://svc:p@ss@rabbit:5672/")
    assert secrets.redact("amqp://svc:p@ss@rabbit:5672/ and p@ss") == "amqp://svc:***@rabbit:5672/ and ***"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["amqp://", "u", ":", "p", "@", "/", "h", " ", "?", "&", "password=", "x", "${V}",
                                 "\n", "é", "#"]), max_size=30).map("".join))
def test_url_passwords_are_masked_as_the_two_expressions_mask_them_everywhere(text):
    """The expressions are tried only on text that holds an ``@`` or a ``password=``: what the
    mask gives is what applying both everywhere gives."""
    def everywhere(text: str) -> str:
        text = redact.URL_PASSWORD_RE.sub(
            lambda m: m.group(0) if redact.REFERENCES_ONLY_RE.match(m.group("password")) else
            f"{m.group('head')}:{redact.MASK}@", text)
        return redact.QUERY_PASSWORD_RE.sub(
            lambda m: m.group(0) if redact.REFERENCES_ONLY_RE.match(m.group("password")) or not m.group("password")
            else f"{m.group('head')}{redact.MASK}", text)

    assert redact._mask_url_passwords(text) == everywhere(text)


def test_saved_plans_keep_names_that_happen_to_hold_the_management_password(secrets):
    secrets.register("orders")  # a management password, not from a variable
    queue = QueueState(vhost="v", queue="orders.created", type="classic", arguments={})
    plan = Plan(changes=(Change("create", None, queue, {}, "new"),), vhosts=("v",),
                broker=BrokerInfo("http://b:15672", "3.10.8", "rabbit@orders-1"))
    document = saved_plan(plan)
    assert document["changes"][0]["name"] == "orders.created" and document["broker"]["cluster_name"] == "rabbit@orders-1"
    assert document["secrets"] == []


def test_plan_markdown_is_a_table_of_changes_with_the_full_plan_folded():
    from topology.render.text import render_plan_markdown

    before = QueueState(vhost="v", queue="orders", type="classic", arguments={"x-message-ttl": 5})
    after = QueueState(vhost="v", queue="orders", type="classic", arguments={"x-message-ttl": 1000})
    odd = QueueState(vhost="v", queue="odd```|name", type="quorum", arguments={})
    plan = Plan(changes=(
        Change("replace", before, after, {"arguments.x-message-ttl": FieldChange(5, 1000)}, "why", messages=7),
        Change("create", None, odd, {}, "new"),
    ), vhosts=("v",), broker=BrokerInfo("http://b:15672", "3.10.8", "c"))
    text = render_plan_markdown(plan, "prod")
    assert text.startswith("### :memo: topology plan for prod: 1 to create, 0 to update, 1 to replace")
    assert ("| `-/+` replace | queue | `v/orders` | `arguments.x-message-ttl`: `5` -> `1000` **DESTRUCTIVE: holds 7 "
            "message(s)** |") in text
    assert "| `+` create | queue | ````v/odd```\\|name```` | new (`quorum`) |" in text  # the name's backticks kept
    assert "\n````\n" in text  # the fence is longer than the backticks in the name
    empty = render_plan_markdown(Plan(changes=(), vhosts=("v",)))
    assert empty.startswith("### :white_check_mark: topology plan: no changes")


def test_every_format_says_which_value_is_the_brokers_and_which_the_files():
    said = "arguments.x-message-ttl: 5 on the broker, 1000 in the files"
    for output_format in ("text", "markdown", "junit", "json"):
        assert said in render(report_of(), output_format), output_format
    changed = next(o for o in json.loads(render(report_of(), "json"))["objects"] if o["status"] == "changed")
    assert changed["diff"] == {"arguments.x-message-ttl": {"live": 5, "declared": 1000}}


def test_markdown_shows_patterns_keys_and_values_as_written():
    """Rendered (Python-Markdown, with tables), a pattern such as ^(a|b)_x_* reads as written, never
    as italics or a broken table, in the plan and in the drift report."""
    import markdown

    from topology.diff import UPDATE
    from topology.markup import markdown_cell

    pattern = "^(a|b)_x_*"
    before = PolicyState(vhost="v", policy="p_1", pattern="^old_*", definition={})
    after = PolicyState(vhost="v", policy="p_1", pattern=pattern, definition={})
    change = Change(UPDATE, before, after, fields={"pattern": FieldChange("^old_*", pattern)})
    plan = Plan(changes=(change,), vhosts=("v",))
    from topology.render.text import render_plan_markdown

    html = markdown.markdown(render_plan_markdown(plan), extensions=["tables"])
    assert "<em>" not in html and "<code>^(a|b)_x_*</code>" in html.replace("\\|", "|")
    html = markdown.markdown(f"| a |\n|---|\n| {markdown_cell(pattern)} |\n", extensions=["tables"])
    assert "<td>^(a|b)_x_*</td>" in html and "<em>" not in html


def test_junit_puts_cluster_wide_objects_in_a_suite_of_their_own():
    """Users have no vhost: their suite was named 'vhost ' and their classname '.user'."""
    from topology.drift import ObjectStatus
    from topology.ha import QueueHealth

    report = report_of()
    user = ObjectStatus(kind="user", vhost="", name="svc", identity={"vhost": "", "name": "svc"}, status="in_sync",
                        change=None, declared_at="t.yaml:3")
    report = type(report)(report.broker, report.objects + (user,), health=QueueHealth())
    root = ElementTree.fromstring(render(report, "junit"))
    names = [s.get("name") for s in root.findall("testsuite")]
    assert "cluster-wide" in names and "vhost " not in names
    case = next(c for c in root.iter("testcase") if c.get("name") == "svc")
    assert case.get("classname") == "cluster.user"
