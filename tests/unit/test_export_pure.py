"""Export, offline: a definitions document → the project's files → the same objects.

The round trip here is the pure one: the exported files, loaded and validated, must plan to
no change against the broker state that the same definitions give (read the way the tool
reads a live broker). The real-world definitions files in tests/fixtures/realworld (sources in
SOURCES.md there) are the acceptance set. The round trips through a real broker are in
tests/integration/test_export.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topology import redact
from topology.kinds import VhostState
from topology.broker.live import access_state, definitions_state
from topology.diff import diff
from topology.errors import ConfigError, TopologyError
from topology.export import export_definitions, hide_secret_values, render_file, variable_name, vhost_file_name
from topology.loader import load
from topology.passwords import resolve_passwords
from topology.kinds import canonical, GlobalParameterState
from topology.state import desired_state, State
from topology.validate import validate
from topology.variables import Variables

REALWORLD = Path(__file__).resolve().parent.parent / "fixtures" / "realworld"
FILES = sorted(p.name for p in REALWORLD.glob("*.json"))


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    redact.forget_all()


def live_state(definitions: dict, vhosts: list[str]) -> State:
    """The state the tool reads from a broker holding ``definitions`` (whole-broker form)."""
    state = State()
    entries = {v["name"]: v for v in definitions.get("vhosts", [])}
    for name in vhosts:
        state.vhosts[name] = VhostState.from_definition(entries.get(name, {"name": name}))
        per_vhost = {kind: [e for e in definitions.get(kind) or [] if e.get("vhost", "/") == name]
                     for kind in ("exchanges", "queues", "bindings", "policies", "parameters")}
        # a broker holds no binding to a missing queue or exchange (two files have one)
        present = {("exchange", e["name"]) for e in per_vhost["exchanges"]} | {
            ("queue", q["name"]) for q in per_vhost["queues"]}
        per_vhost["bindings"] = [b for b in per_vhost["bindings"] if (b.get("destination_type", "queue"), b["destination"])
                                 in present and (("exchange", b["source"]) in present or b["source"].startswith("amq."))]
        definitions_state(state.vhosts[name], per_vhost, state)
    access_state(definitions.get("users") or [], definitions.get("permissions") or [],
                 definitions.get("topic_permissions") or [], state)
    for entry in definitions.get("global_parameters") or []:
        state.add(GlobalParameterState(parameter=entry["name"], value=canonical(entry["value"])))
    return state


def export_and_load(definitions: dict, tmp_path: Path, **options):
    result = export_definitions(definitions, **options)
    for path, data in result.files.items():
        target = tmp_path / "out" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_file(data, "test"), encoding="utf-8")
    environment = {name: result.secret_values.get(name, "unknown-password") for name in result.variables}
    topology = load([str(tmp_path / "out")], Variables(environment=environment))
    validate(topology)
    return result, topology


REFUSED = {
    # hand-written, never loaded into a broker as it is: quorum queues with x-max-priority, a classic
    # queue with x-delivery-limit, and policy keys RabbitMQ does not know. The export keeps them;
    # validate names each one, as the broker would refuse them.
    "adrienKoumgangT__distriqueue__definitions.json": [
        "max_priority (x-max-priority) is not supported by quorum queues",
        "delivery_limit (x-delivery-limit) is not supported by classic queues",
        "max_priority (x-max-priority) is not supported by quorum queues",
        "unknown policy key 'x-queue-type'", "unknown policy key 'max-priority'",
        "unknown policy key 'x-max-in-memory-length'", "unknown policy key 'x-queue-type'",
        "unknown policy key 'x-queue-type'", "unknown policy key 'max-priority'", "unknown policy key 'x-queue-type'",
        "unknown policy key 'max-priority'", "unknown policy key 'x-queue-type'"],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_rabbitmq_refuses_is_exported_and_named_by_validate(name, tmp_path):
    definitions = json.loads((REALWORLD / name).read_text(encoding="utf-8"))
    with pytest.raises(ConfigError) as info:
        export_and_load(definitions, tmp_path)
    assert sorted(p.message.split(": ", 1)[-1] for p in info.value.problems) == sorted(REFUSED[name])


@pytest.mark.parametrize("name", [f for f in FILES if f not in REFUSED])
def test_every_real_world_file_exports_to_files_that_plan_to_no_change(name, tmp_path):
    definitions = json.loads((REALWORLD / name).read_text(encoding="utf-8"))
    result, topology = export_and_load(definitions, tmp_path)
    desired = desired_state(topology)
    live = live_state(definitions, sorted(desired.vhosts))
    resolve_passwords(desired, live)
    found = diff(desired, live, connected_user=None)
    # users come without a password (left as it is): not even a password differs, and no variable is needed
    assert not any(what.startswith("the password of user") for what in result.variables.values())
    changes = [(c.action, c.kind, c.where, sorted(c.fields)) for c in found.changes]
    assert changes == [], changes
    for resource in found.unmanaged:  # what the export left out is what the tool never manages
        assert resource.key in found.protected or resource.kind in ("permission", "topic_permission"), resource
    assert sorted(desired.vhosts), "nothing was exported"


def test_exported_text_is_stable_and_escapes_literal_references(tmp_path):
    definitions = {
        "vhosts": [{"name": "shop"}],
        "queues": [{"name": "b${NOT_A_VARIABLE}", "vhost": "shop", "durable": True, "auto_delete": False,
                    "arguments": {"x-message-ttl": 1000, "x-queue-type": "quorum", "x-custom": "a"}},
                   {"name": "a", "vhost": "shop", "durable": True, "auto_delete": False, "arguments": {}}],
        "exchanges": [{"name": "amq.direct", "vhost": "shop", "type": "direct"}],
        "bindings": [],
    }
    first = export_definitions(definitions)
    again = export_definitions(json.loads(json.dumps(definitions)))
    text = render_file(first.files["vhosts/shop.yaml"], "defs.json")
    assert text == render_file(again.files["vhosts/shop.yaml"], "defs.json")
    assert text == (
        "# Exported by 'topology export' from defs.json.\n"
        "vhosts:\n  shop:\n    queues:\n      a: {}\n      b$${NOT_A_VARIABLE}:\n        type: quorum\n"
        "        message_ttl: 1s\n        arguments:\n          x-custom: a\n")
    result, topology = export_and_load(definitions, tmp_path)
    assert set(topology.vhosts["shop"].queues) == {"a", "b${NOT_A_VARIABLE}"}


def test_secrets_become_variables_and_are_never_written(tmp_path):
    definitions = {
        "vhosts": [{"name": "v"}],
        "users": [{"name": "orders-svc", "password_hash": "HASHVALUE", "tags": "monitoring,management"}],
        "permissions": [{"user": "orders-svc", "vhost": "v", "configure": "", "write": ".*", "read": ".*"}],
        "parameters": [{"vhost": "v", "component": "shovel", "name": "to-dc2", "value": {
            "src-uri": "amqp://", "src-queue": "q", "dest-uri": "amqp://mover:s3cret@dc2/v", "prefetch-count": 5}}],
    }
    result = export_definitions(definitions, password_variables=True)
    written = "".join(render_file(data, "x") for data in result.files.values())
    assert "s3cret" not in written and "HASHVALUE" not in written
    assert set(result.variables) == {"ORDERS_SVC_PASSWORD", "TO_DC2_DESTINATION_URI"}
    shovel = result.files["vhosts/v.yaml"]["vhosts"]["v"]["shovels"]["to-dc2"]
    assert shovel == {"source_uri": "amqp://", "destination_uri": "${TO_DC2_DESTINATION_URI}",
                      "prefetch_count": 5, "source_queue": "q"}
    assert result.files["cluster.yaml"]["users"]["orders-svc"] == {
        "password": "${ORDERS_SVC_PASSWORD}", "tags": ["management", "monitoring"],
        "permissions": {"v": {"configure": "", "write": ".*", "read": ".*"}}}


SECRETIVE = {
    "vhosts": [{"name": "v"}],
    "queues": [{"name": n, "vhost": "v", "durable": True, "auto_delete": False, "arguments": {}}
               for n in ("inbox.tok-1234567", "admin", "administrator", "lit${X}.tok-1234567")],
    "exchanges": [{"name": "hooks", "vhost": "v", "type": "direct", "durable": True, "auto_delete": False,
                   "internal": False, "arguments": {}}],
    "bindings": [{"source": "hooks", "vhost": "v", "destination": "admin", "destination_type": "queue",
                  "routing_key": "orders.tok-1234567", "arguments": {}}],
}


def test_secret_values_on_the_broker_are_written_as_their_variables(tmp_path):
    """Inside longer text only secrets of 8 characters or more are looked for; a shorter one only as
    a whole name or value. The files load back to the same names with the variables set."""
    result = export_definitions(json.loads(json.dumps(SECRETIVE)))
    hide_secret_values(result, {"HOOK_TOKEN": "tok-1234567", "SHORT_TOKEN": "admin"})
    text = render_file(result.files["vhosts/v.yaml"], "x")
    assert "tok-1234567" not in text
    assert "inbox.${HOOK_TOKEN}" in text and "lit$${X}.${HOOK_TOKEN}" in text and "orders.${HOOK_TOKEN}" in text
    assert "${SHORT_TOKEN}:" in text and "administrator" in text
    assert set(result.variables) == {"HOOK_TOKEN", "SHORT_TOKEN"}
    path = tmp_path / "v.yaml"
    path.write_text(text, encoding="utf-8")
    topology = load([str(path)], Variables(environment={"HOOK_TOKEN": "tok-1234567", "SHORT_TOKEN": "admin"}))
    assert set(topology.vhosts["v"].queues) == {q["name"] for q in SECRETIVE["queues"]}


@pytest.mark.parametrize("name, secrets, unnamed", [
    ("pay$tok-1234567", {"HOOK_TOKEN": "tok-1234567"}, []),  # "$${" would read as a literal
    ("q-management-pw", {}, ["management-pw"]),  # in no variable
])
def test_a_secret_that_cannot_be_written_as_a_variable_stops_the_export(name, secrets, unnamed):
    definitions = {"vhosts": [{"name": "v"}], "queues": [
        {"name": name, "vhost": "v", "durable": True, "auto_delete": False, "arguments": {}}]}
    result = export_definitions(definitions)
    with pytest.raises(TopologyError) as refused:
        hide_secret_values(result, secrets, unnamed)
    assert "nothing was written" in str(refused.value)
    assert not any(value in str(refused.value) for value in [*secrets.values(), *unnamed])


def test_names_of_files_and_variables():
    assert vhost_file_name("/") == "vhosts/default.yaml"
    assert vhost_file_name("a/b c") == "vhosts/a_2Fb_20c.yaml"
    assert vhost_file_name("x_2Fy", ["vhosts/x_2Fy.yaml"]) == "vhosts/x_2Fy+2.yaml"


def test_vhosts_whose_names_read_the_same_as_a_file_each_get_their_own():
    """x/y and x_2Fy, / and default once wrote one file: one vhost vanished, with exit 0."""
    names = ["x/y", "x_2Fy", "/", "default", "a+2"]
    result = export_definitions({"vhosts": [{"name": n} for n in names],
                                 "queues": [{"vhost": n, "name": f"q-{i}", "durable": True, "arguments": {}}
                                            for i, n in enumerate(names)]}, names, users=False)
    assert len(result.files) == 5
    held = {vhost: file for file, data in result.files.items() for vhost in data["vhosts"]}
    assert sorted(held) == sorted(names) and len(set(held.values())) == 5
    assert held["/"] == "vhosts/default.yaml" and held["default"] == "vhosts/default+2.yaml"
    assert held["a+2"] == "vhosts/a_2B2.yaml"  # a '+' in a name is escaped: never read as a suffix
    assert variable_name("orders.svc", "PASSWORD") == "ORDERS_SVC_PASSWORD"
    assert variable_name("1st", "URI") == "V_1ST_URI"


def test_export_from_a_definitions_file_on_the_command_line(run, tmp_path):
    source = REALWORLD / "rabbitmq__cluster-operator__federation-over-tls.json"
    out = tmp_path / "out"
    result = run("export", "--from-definitions", str(source), "--out", str(out))
    assert result.code == 0, result.err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml")) == [
        "cluster.yaml", "vhosts/downstream.yaml", "vhosts/upstream.yaml"]
    assert "SPIKE_URI: the URI of upstream 'spike' in vhost 'upstream' (uri), with its password" in result.out
    assert "internal to a plugin (federation)" in result.out
    assert run("validate", str(out)).code == 0  # offline: the variables stand as ${NAME}
    (tmp_path / "bad.json").write_text("[1, 2", encoding="utf-8")
    bad = run("export", "--from-definitions", str(tmp_path / "bad.json"), "--out", str(out))
    assert bad.code == 1 and bad.err.count("\n") == 1 and "bad.json:1: not JSON: the file ends too early" in bad.err


def test_names_the_management_api_cannot_address_are_skipped_and_the_files_load(tmp_path):
    """Objects named '.' or '..' (declared over AMQP) are left out with a note: the files validate."""
    from topology.loader import load_valid

    definitions = {
        "vhosts": [{"name": "v"}, {"name": ".."}],
        "exchanges": [{"name": ".", "vhost": "v", "type": "direct"}, {"name": "x", "vhost": "v", "type": "direct"}],
        "queues": [{"name": "..", "vhost": "v", "durable": True, "arguments": {}},
                   {"name": "q", "vhost": "v", "durable": True, "arguments": {}},
                   {"name": "q", "vhost": "..", "durable": True, "arguments": {}}],
        "bindings": [{"source": ".", "destination": "q", "destination_type": "queue", "vhost": "v", "routing_key": "k"},
                     {"source": "x", "destination": "q", "destination_type": "queue", "vhost": "v", "routing_key": "k"}],
        "policies": [{"name": ".", "vhost": "v", "pattern": "q", "definition": {"max-length": 1}, "priority": 0}],
    }
    result = export_definitions(definitions, users=False)
    assert list(result.files) == [vhost_file_name("v")]
    data = result.files[vhost_file_name("v")]["vhosts"]["v"]
    assert list(data["exchanges"]) == ["x"] and list(data["queues"]) == ["q"] and "policies" not in data
    assert [(b["source"], b["destination"]) for b in data["bindings"]] == [("x", "q")]
    skipped = "\n".join(result.skipped)
    for what in ("vhost '..'", "exchange '.'", "queue '..'", "binding . -> q", "policy '.'"):
        assert what in skipped, skipped
    path = tmp_path / "v.yaml"
    path.write_text(render_file(result.files[vhost_file_name("v")], "a test"), encoding="utf-8")
    load_valid([str(path)])


def test_export_and_render_never_write_through_a_link(run, tmp_path):
    """--out once followed links: an exported file, or a rendered one holding secrets, could land
    anywhere a link in the target folder pointed."""
    import json as json_module

    source = tmp_path / "definitions.json"
    source.write_text(json_module.dumps({"vhosts": [{"name": "v"}], "queues": [
        {"vhost": "v", "name": "q", "durable": True, "auto_delete": False, "arguments": {}}]}), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / "victim.yaml"
    victim.write_text("untouched\n", encoding="utf-8")

    out = tmp_path / "out"
    (out / "vhosts").mkdir(parents=True)
    (out / "vhosts" / "v.yaml").symlink_to(victim)
    linked = run("export", "--from-definitions", str(source), "--vhost", "v", "--out", str(out))
    assert linked.code == 1 and "it is a symbolic link (not written through)" in linked.err
    away = tmp_path / "away"
    away.mkdir()
    (away / "vhosts").symlink_to(elsewhere)
    led = run("export", "--from-definitions", str(source), "--vhost", "v", "--out", str(away))
    assert led.code == 1 and "a link on the way leads out of" in led.err
    assert victim.read_text(encoding="utf-8") == "untouched\n" and sorted(p.name for p in elsewhere.iterdir()) == [
        "victim.yaml"]

    topology = tmp_path / "t.yaml"
    topology.write_text("vhosts:\n  v:\n    queues:\n      q: {}\n", encoding="utf-8")
    rendered_link = tmp_path / "rendered.json"
    rendered_link.symlink_to(victim)
    refused = run("render", str(topology), "--format", "definitions", "--out", str(rendered_link))
    assert refused.code == 1 and "symbolic link" in refused.err
    assert victim.read_text(encoding="utf-8") == "untouched\n"
    written = run("render", str(topology), "--format", "definitions", "--out", str(tmp_path / "plain.json"))
    assert written.code == 0 and (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o600


USERS = {
    "vhosts": [{"name": "v"}, {"name": "w"}],
    "users": [{"name": "guest", "password_hash": "GUESTHASH", "tags": ["administrator"]},
              {"name": "orders-svc", "password_hash": "HASHVALUE", "tags": "monitoring"},
              {"name": "cert-only", "password_hash": "", "tags": ""}],
    # RabbitMQ gives the user that creates a vhost (here guest) a permission there
    "permissions": [{"user": user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
                    for user in ("guest", "orders-svc", "cert-only") for vhost in ("v", "w")],
    "topic_permissions": [{"user": "guest", "vhost": "v", "exchange": "amq.topic", "write": ".*", "read": ".*"}],
}


def test_the_connecting_user_is_left_out_unless_asked_for(tmp_path):
    result = export_definitions(json.loads(json.dumps(USERS)), connecting_user="guest")
    users = result.files["cluster.yaml"]["users"]
    assert sorted(users) == ["cert-only", "orders-svc"] and result.connecting_user == "guest"
    assert not any("guest" in line for line in result.skipped)  # said once, by the command, not as "no permission"
    included = export_definitions(json.loads(json.dumps(USERS)), connecting_user=None)
    assert sorted(included.files["cluster.yaml"]["users"]) == ["cert-only", "guest", "orders-svc"]
    assert included.connecting_user is None
    assert included.files["cluster.yaml"]["users"]["guest"]["topic_permissions"] == {
        "v": {"amq.topic": {"write": ".*", "read": ".*"}}}
    # another user connecting: guest is exported, and nothing is said
    other = export_definitions(json.loads(json.dumps(USERS)), connecting_user="admin")
    assert "guest" in other.files["cluster.yaml"]["users"] and other.connecting_user is None
    # without access to the exported vhosts, it would not be exported anyway: nothing to say
    alone = export_definitions({**json.loads(json.dumps(USERS)), "permissions": [], "topic_permissions": []},
                               connecting_user="guest")
    assert alone.connecting_user is None


def test_users_are_exported_without_passwords_and_plan_with_no_variable(tmp_path):
    definitions = json.loads(json.dumps(USERS))
    result, topology = export_and_load(definitions, tmp_path, connecting_user="guest")
    assert result.variables == {} and result.secret_values == {}
    text = (tmp_path / "out" / "cluster.yaml").read_text(encoding="utf-8")
    assert "password" not in text and "HASHVALUE" not in text
    assert any("1 user(s) written without their password" in note and "--password-variables" in note
               for note in result.notes)
    desired = desired_state(topology)
    assert not any(user.managed_password for user in desired.objects.values() if user.kind == "user")
    live = live_state(definitions, ["v", "w"])
    resolve_passwords(desired, live)
    found = diff(desired, live, connected_user="guest")
    assert found.changes == []
    # asked for, the passwords become variables again (the files then manage them)
    managed = export_definitions(json.loads(json.dumps(USERS)), connecting_user="guest", password_variables=True)
    assert managed.files["cluster.yaml"]["users"]["orders-svc"]["password"] == "${ORDERS_SVC_PASSWORD}"
    assert "password" not in managed.files["cluster.yaml"]["users"]["cert-only"]  # it has none
    assert set(managed.variables) == {"ORDERS_SVC_PASSWORD"}


UNITS = {
    "vhosts": [{"name": "v"}],
    "queues": [{"name": name, "vhost": "v", "durable": True, "auto_delete": False, "arguments": arguments}
               for name, arguments in (
                   ("day", {"x-message-ttl": 86400000, "x-expires": 90000, "x-max-length-bytes": 1073741824}),
                   ("odd", {"x-message-ttl": 1500, "x-expires": 1, "x-max-length-bytes": 1500}),
                   ("si", {"x-message-ttl": 0, "x-max-length-bytes": 5000000, "x-max-length": 1000}))],
    "parameters": [{"vhost": "v", "component": "federation-upstream", "name": "up",
                    "value": {"uri": "amqp://", "expires": 3600000, "message-ttl": 604800000}}],
}


def test_durations_and_sizes_are_written_with_their_most_readable_exact_unit(tmp_path):
    result, topology = export_and_load(json.loads(json.dumps(UNITS)), tmp_path)
    queues = result.files["vhosts/v.yaml"]["vhosts"]["v"]["queues"]
    assert queues["day"] == {"message_ttl": "1d", "expires": "90s", "max_length_bytes": "1GiB"}
    assert queues["odd"] == {"message_ttl": "1500ms", "expires": "1ms", "max_length_bytes": 1500}
    assert queues["si"] == {"message_ttl": 0, "max_length_bytes": "5MB", "max_length": 1000}
    upstream = result.files["vhosts/v.yaml"]["vhosts"]["v"]["federation_upstreams"]["up"]
    assert upstream["expires"] == "1h" and upstream["message_ttl"] == "7d"
    # the files load back to the broker's numbers
    loaded = {name: declared.spec for name, declared in topology.vhosts["v"].queues.items()}
    assert (loaded["day"].message_ttl, loaded["day"].expires, loaded["day"].max_length_bytes) == (
        86400000, 90000, 1073741824)
    assert (loaded["odd"].message_ttl, loaded["odd"].max_length_bytes, loaded["si"].max_length_bytes) == (
        1500, 1500, 5000000)
    spec = topology.vhosts["v"].federation_upstreams["up"].spec
    assert (spec.expires, spec.message_ttl) == (3600000, 604800000)


def test_the_unit_forms_read_back_to_the_same_numbers():
    from topology.model.values import parse_duration, parse_size, readable_duration, readable_size

    assert [readable_duration(v) for v in (86400000, 90000, 1500, 5400000, 0)] == ["1d", "90s", "1500ms", "90m", 0]
    assert [readable_size(v) for v in (1073741824, 5000000, 1500, 1024000, 0)] == ["1GiB", "5MB", 1500, "1000KiB", 0]
    for value in [0, 1, 999, 1000, 1024, 1500, 60000, 86400000, 10**12, 2**40, 3 * 2**30, 123456789012]:
        assert parse_duration(readable_duration(value)) == value
        assert parse_size(readable_size(value)) == value


def test_a_number_too_long_to_read_back_with_a_unit_is_written_plain():
    from topology.model.format import Queue
    from topology.model.values import parse_duration, with_unit

    huge = 10**40
    field = Queue.model_fields["message_ttl"].annotation
    assert with_unit(field, huge) == huge and parse_duration(huge) == huge
    assert with_unit(field, 86400000) == "1d"


def test_every_real_world_number_with_a_unit_loads_back_the_same(tmp_path):
    """Every message TTL, expiry and length in bytes of the real-world files that the export writes
    as a friendly field loads back to the broker's number (most are written with a unit)."""
    compared, with_units = 0, 0
    for index, name in enumerate(f for f in FILES if f not in REFUSED):
        definitions = json.loads((REALWORLD / name).read_text(encoding="utf-8"))
        result, topology = export_and_load(definitions, tmp_path / str(index))
        arguments = {(q.get("vhost", "/"), q["name"]): q.get("arguments") or {} for q in definitions.get("queues") or []}
        for vhost, declared in topology.vhosts.items():
            written = next(data["vhosts"][vhost].get("queues", {}) for data in result.files.values()
                           if vhost in data.get("vhosts", {}))
            for queue, spec in declared.queues.items():
                for friendly, argument in (("message_ttl", "x-message-ttl"), ("expires", "x-expires"),
                                           ("max_length_bytes", "x-max-length-bytes")):
                    value = getattr(spec.spec, friendly)
                    if value is not None:
                        assert value == arguments[(vhost, queue)][argument], (name, vhost, queue, friendly)
                        compared += 1
                        with_units += isinstance(written[queue][friendly], str)
    assert compared > 20 and with_units > compared // 2, (compared, with_units)
