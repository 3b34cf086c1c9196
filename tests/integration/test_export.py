"""Export against the real broker: what the tool exports from a broker plans to no change
against that broker, with no secret in the files or the output."""

from __future__ import annotations

import ast
import json
import os
import re
import uuid
from pathlib import Path

import pytest

from tests import generate
from tests.conftest import AMQP_ADDRESS, BROKER_AUTH, amqp_uri, wait_until
from topology.export import variable_name
from topology.kinds.parameter import SHOVEL_OLD_KEYS
from topology.rules.versions import has_classic_mirroring

pytestmark = pytest.mark.broker

REALWORLD = Path(__file__).resolve().parent.parent / "fixtures" / "realworld"


@pytest.fixture
def svc_user(api):
    name, password = f"topology-test-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    yield name, password
    api.delete("users", name)


RICH = """
vhosts:
  {vhost}:
    description: exported
    tags: [team-a]
    tracing: true
    limits: {{max-queues: 100}}
    exchanges:
      events: {{type: topic, alternate_exchange: unrouted}}
      unrouted: {{type: fanout}}
      by-header: {{type: headers, durable: false}}
      inner: {{type: direct, internal: true, arguments: {{x-note: a}}}}
    queues:
      orders: {{type: quorum, delivery_limit: 5, dead_letter_exchange: events, message_ttl: 60000}}
      audit: {{max_length: 10, overflow: reject-publish, max_priority: 5, arguments: {{x-custom: "1"}}}}
      stream.log: {{type: stream, max_age: 7D}}
      lost: {{}}
      "odd $${{NAME}}": {{}}
    bindings:
      - {{source: events, destination: orders, routing_key: "order.#"}}
      - {{source: events, destination: inner, destination_type: exchange, routing_key: "x.*"}}
      - {{source: by-header, destination: audit, arguments: {{x-match: any, kind: pdf, size: 10}}}}
      - {{source: unrouted, destination: lost}}
    policies:
      limits: {{pattern: "^audit$", apply_to: queues, priority: 3, definition: {{max-length-bytes: 1000000}}}}
    operator_policies:
      cap: {{pattern: ".*", apply_to: queues, definition: {{max-length: 50000}}}}
    shovels:
      mover:
        source_uri: "${{SRC_URI}}"
        source_queue: lost
        destination_uri: amqp://
        destination_exchange: events
        destination_exchange_key: order.moved
        prefetch_count: 20
    federation_upstreams:
      origin: {{uri: "amqp:///{other}", exchange: events, max_hops: 2, expires: 1h}}
    federation_upstream_sets:
      all: [{{upstream: origin, prefetch_count: 10}}]
  {other}:
    queues:
      elsewhere: {{}}
users:
  {user}:
    password: ${{SVC_PASSWORD}}
    tags: [monitoring]
    limits: {{max-connections: 7}}
    permissions:
      {vhost}: {{configure: "^orders", write: ".*", read: ".*"}}
    topic_permissions:
      {vhost}:
        events: {{write: "^order\\\\.", read: ".*"}}
"""


def test_a_live_export_plans_to_no_change_and_holds_no_secret(run, write, vhost, other_vhost, svc_user, api,
                                                               monkeypatch, tmp_path):
    user, password = svc_user
    shovel_uri = amqp_uri(vhost, *BROKER_AUTH)
    monkeypatch.setenv("SRC_URI", shovel_uri)
    monkeypatch.setenv("SVC_PASSWORD", password)
    path = write(RICH.format(vhost=vhost, other=other_vhost, user=user))
    applied = run("apply", path, "--auto-approve")
    assert applied.code == 0, applied.err
    out = tmp_path / "exported"
    exported = run("export", "--vhost", vhost, "--vhost", other_vhost, "--out", str(out))
    assert exported.code == 0, exported.err
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert files == sorted(["cluster.yaml", f"vhosts/{vhost}.yaml", f"vhosts/{other_vhost}.yaml"])
    text = "".join(p.read_text() for p in out.rglob("*.yaml")) + exported.out + exported.err
    assert password not in text and f":{BROKER_AUTH[1]}@" not in text
    variables = {line.split(":")[0].strip() for line in exported.out.splitlines() if line.startswith("  ")}
    assert variables == {"MOVER_SOURCE_URI"}  # users come without their password
    # the broker gave the user that created the vhosts (this tool's) a permission there: it is left out, and said so
    cluster = (out / "cluster.yaml").read_text()
    assert f"{user}:" in cluster and f"{BROKER_AUTH[0]}:" not in cluster and "password" not in cluster
    assert exported.err.splitlines() == [
        f"skipped: user {BROKER_AUTH[0]!r} and its permissions: the user this command connects as "
        "(--include-connecting-user exports them)"]
    assert "odd $${NAME}" in (out / f"vhosts/{vhost}.yaml").read_text()  # a literal ${ stays literal
    vhost_text = (out / f"vhosts/{vhost}.yaml").read_text()
    assert "message_ttl: 1m" in vhost_text and "expires: 1h" in vhost_text  # durations with their unit

    # the user's own file and the export read the same: the plan from the export is empty, with no
    # password variable set
    monkeypatch.setenv("MOVER_SOURCE_URI", shovel_uri)
    monkeypatch.delenv("SVC_PASSWORD")
    plan = run("plan", str(out), "--prune", "--format", "json")
    assert plan.code == 0, plan.err
    assert json.loads(plan.out)["changes"] == []
    again = tmp_path / "again"
    assert run("export", "--vhost", vhost, "--vhost", other_vhost, "--out", str(again)).code == 0
    for file in out.rglob("*.yaml"):  # a re-export is the same text
        assert (again / file.relative_to(out)).read_text() == file.read_text()

    # asked for: the connecting user too, and every password as a variable, which planning then needs
    full = tmp_path / "full"
    exported = run("export", "--vhost", vhost, "--vhost", other_vhost, "--out", str(full), "--include-connecting-user",
                   "--password-variables")
    assert exported.code == 0, exported.err
    assert "--include-connecting-user" not in exported.err
    variables = {line.split(":")[0].strip() for line in exported.out.splitlines() if line.startswith("  ")}
    connected_variable = variable_name(BROKER_AUTH[0], "PASSWORD")
    assert variables == {"MOVER_SOURCE_URI", variable_name(user, "PASSWORD"), connected_variable}
    assert f"{BROKER_AUTH[0]}:" in (full / "cluster.yaml").read_text()
    unset = run("plan", str(full), "--format", "json")
    assert unset.code != 0 and variable_name(user, "PASSWORD") in unset.err
    monkeypatch.setenv(variable_name(user, "PASSWORD"), password)
    monkeypatch.setenv(connected_variable, BROKER_AUTH[1])
    plan = run("plan", str(full), "--prune", "--format", "json")
    assert plan.code == 0, plan.err
    assert json.loads(plan.out)["changes"] == []
    monkeypatch.setenv(variable_name(user, "PASSWORD"), "another-password")  # a declared password is still compared
    changed = run("plan", str(full), "--format", "json")
    assert [c["diff"] for c in json.loads(changed.out)["changes"]] == [{"password": {"before": "set", "after": "changed"}}]
    assert password not in changed.out + changed.err and "another-password" not in changed.out + changed.err


def test_a_definitions_file_loaded_into_a_broker_exports_to_no_change(run, api, vhost, tmp_path):
    """The real-world file with streams, shovels, an alternate-exchange policy and a binding to a
    missing queue, loaded into a throw-away vhost the way RabbitMQ loads definitions."""
    source = json.loads((REALWORLD / "neicnordic__sensitive-data-archive__definitions.json").read_text())
    per_vhost = {kind: [{k: v for k, v in e.items() if k != "vhost"} for e in source.get(kind, [])]
                 for kind in ("exchanges", "queues", "bindings", "policies", "parameters")}
    for entry in per_vhost["parameters"]:  # the shovels name their vhost in their URIs
        entry["value"] = json.loads(json.dumps(entry["value"]).replace("amqp:///sda", f"amqp:///{vhost}"))
    per_vhost["bindings"] = [b for b in per_vhost["bindings"] if b["destination"] != "files"]  # RabbitMQ refuses it
    api.put("vhosts", vhost)
    api.post("definitions", vhost, body=per_vhost)
    out = tmp_path / "exported"
    exported = run("export", "--vhost", vhost, "--no-users", "--out", str(out))
    assert exported.code == 0, exported.err
    plan = run("plan", str(out), "--prune", "--format", "json")
    assert plan.code == 0, plan.err
    assert json.loads(plan.out)["changes"] == []
    text = (out / f"vhosts/{vhost}.yaml").read_text()
    assert "type: stream" in text and "shovels:" in text and "alternate-exchange: sda.dead" in text


def test_a_4x_broker_with_no_delivery_limit_and_a_classic_leader_locator_is_adopted(run, api, vhost, tmp_path,
                                                                                       broker_version):
    """4.0 made a negative delivery limit mean none (and quorum queues default to 20), and took
    x-queue-leader-locator on classic queues. A broker holding them exports to files that validate
    and plan to no change; on 3.x, where -1 drops a message the first time it is returned, the
    plan refuses it with the version rule."""
    four = broker_version >= (4, 0)
    api.put("vhosts", vhost)
    api.put("queues", vhost, "unlimited", body={"durable": True, "arguments": {"x-queue-type": "quorum",
                                                                              "x-delivery-limit": -1}})
    if four:
        api.put("queues", vhost, "placed", body={"durable": True, "arguments": {"x-queue-leader-locator": "balanced"}})
        api.put("policies", vhost, "no-limit", body={"pattern": "^unl", "apply-to": "quorum_queues",
                                                     "definition": {"delivery-limit": -1}})
    out = tmp_path / "exported"
    exported = run("export", "--vhost", vhost, "--no-users", "--out", str(out))
    assert exported.code == 0, exported.err
    assert run("validate", str(out)).code == 0
    plan = run("plan", str(out), "--prune", "--format", "json")
    if four:
        assert plan.code == 0 and json.loads(plan.out)["changes"] == [], plan.err
        text = (out / f"vhosts/{vhost}.yaml").read_text()
        assert "x-queue-leader-locator: balanced" in text or "leader_locator: balanced" in text
    else:
        assert plan.code == 1 and "a negative delivery limit (no limit) needs RabbitMQ 4.0 or later" in plan.err


FILES = sorted(p.name for p in REALWORLD.glob("*.json"))
# more generated brokers: TOPOLOGY_TEST_SEEDS=1-200 (a range) or 7,19 (a list)
SEEDS = [int(x) for part in os.environ.get("TOPOLOGY_TEST_SEEDS", "1-3").split(",")
         for x in (range(int(part.split("-")[0]), int(part.split("-")[1]) + 1) if "-" in part else [part])]
REFUSED_BY_RABBITMQ = {
    # hand-written, with policy keys RabbitMQ does not know: the broker refuses to load it (and the
    # export of it as a file is checked in tests/unit/test_export_pure.py)
    "adrienKoumgangT__distriqueue__definitions.json": "are not recognised policy settings",
}


def into_test_names(document: dict, prefix: str) -> tuple[dict, dict[str, str], dict[str, str]]:
    """The definitions with every vhost and user renamed under ``prefix`` (so loading them touches
    nothing else on the broker), users given known passwords, and global parameters left out
    (they would rename the cluster). Returns the document, and the new names of vhosts and users."""
    from urllib.parse import quote

    from topology.passwords import SHA256, password_hash

    vhosts = {v["name"]: f"{prefix}-v{i}" for i, v in enumerate(document.get("vhosts", []))}
    for kind in ("exchanges", "queues", "bindings", "policies", "parameters", "permissions", "topic_permissions"):
        for entry in document.get(kind, []):
            vhosts.setdefault(entry.get("vhost", "/"), f"{prefix}-v{len(vhosts)}")
    users = {u["name"]: f"{prefix}-u{i}" for i, u in enumerate(document.get("users", []))}
    result = json.loads(json.dumps(document))
    result["vhosts"] = [{**v, "name": vhosts[v["name"]]} for v in document.get("vhosts", [])] or [
        {"name": new} for new in vhosts.values()]
    for kind in ("exchanges", "queues", "bindings", "policies", "parameters", "permissions", "topic_permissions"):
        for entry in result.get(kind, []):
            entry["vhost"] = vhosts[entry.get("vhost", "/")]
    for kind in ("permissions", "topic_permissions"):
        result[kind] = [e for e in result.get(kind, []) if e["user"] in users]
        for entry in result[kind]:
            entry["user"] = users[entry["user"]]
    result["users"] = []
    for user in document.get("users", []):
        renamed = {k: v for k, v in user.items() if k not in ("password", "password_hash", "hashing_algorithm")}
        renamed.update(name=users[user["name"]], password_hash=password_hash(f"pw-{users[user['name']]}", SHA256),
                       hashing_algorithm=SHA256)
        result["users"].append(renamed)
    for entry in result.get("parameters", []):  # local URIs name a vhost in their path
        text = json.dumps(entry["value"])
        for old, new in vhosts.items():
            text = text.replace(f'amqp:///{quote(old, safe="")}"', f'amqp:///{new}"')
        if "/" in vhosts:  # a URI to this machine's port names "/" of whichever broker listens there (the
            # machine's own when the suite runs on another): the test's vhost instead, over the node's own link
            text = re.sub(r'"amqp://(?:localhost|127\.0\.0\.1)(?::[0-9]+)?/?"', f'"amqp:///{quote(vhosts["/"], safe="")}"',
                          text)
        entry["value"] = json.loads(text)
    result.pop("global_parameters", None)
    return result, vhosts, users


def comparable(definitions: dict, vhosts: set[str], globals_: set[str] = frozenset()) -> dict:
    """A broker's definitions of ``vhosts``, for comparing two loads: sorted, without password hashes."""
    def key(entry: dict) -> str:
        return json.dumps(entry, sort_keys=True)

    def normal(kind: str, entry: dict) -> dict:
        entry = json.loads(json.dumps(entry))
        if kind == "queues":  # the tool always declares the type, which a definitions file may leave out
            arguments = entry.setdefault("arguments", {})
            arguments["x-queue-type"] = arguments.get("x-queue-type") or entry.pop("type", None) or "classic"
        if kind == "parameters" and entry.get("component") == "shovel":  # pre-3.7 keys get their current names
            entry["value"] = {SHOVEL_OLD_KEYS.get(k, k): v for k, v in entry["value"].items()}
        return entry

    def ours(entry: dict) -> bool:  # a federation link's own objects come and go with the link
        name = str(entry.get("name", entry.get("destination", "")))
        return not name.startswith("federation:") and "x-internal-purpose" not in (entry.get("arguments") or {})

    found = {}
    for kind in ("exchanges", "queues", "bindings", "policies", "parameters", "permissions", "topic_permissions"):
        found[kind] = sorted((normal(kind, e) for e in definitions.get(kind, []) if e.get("vhost") in vhosts and ours(e)),
                             key=key)
    found["global_parameters"] = sorted((p for p in definitions.get("global_parameters", []) if p["name"] in globals_),
                                        key=key)
    # users without a permission in these vhosts are not exported (documented): not compared either
    with_access = {e["user"] for e in found["permissions"] + found["topic_permissions"]}
    found["users"] = sorted(({k: v for k, v in u.items() if k not in ("password_hash", "hashing_algorithm")}
                             for u in definitions.get("users", []) if u["name"] in with_access), key=key)
    return found


def load_definitions(api, document: dict):
    """POST the definitions, shovels after the rest (as render's note advises): RabbitMQ imports
    runtime parameters before queues, and a shovel that starts first declares its queue itself,
    as a classic queue. Returns the first refusal, or the last response."""
    shovels = [p for p in document.get("parameters", []) if p.get("component") == "shovel"]
    rest = {**document, "parameters": [p for p in document.get("parameters", []) if p.get("component") != "shovel"]}
    response = None
    for part in (rest, {"parameters": shovels}):
        response = api.session.post(api.url("definitions"), json=part, timeout=120)
        if response.status_code >= 400:
            break
    return response


def settled(api, vhosts: dict[str, str], source: dict) -> dict:
    """The definitions of the test's vhosts once every shovel runs (a starting shovel declares
    the queues it lacks: before, the definitions are still changing)."""
    expected = sum(1 for p in source.get("parameters", []) if p.get("component") == "shovel")
    wait_until(lambda: len([s for s in api.get("shovels") if s.get("vhost") in vhosts.values()
                            and s.get("state") == "running"]) == expected, "the shovels running")
    return comparable(api.get("definitions"), set(vhosts.values()), {p["name"] for p in source.get("global_parameters", [])})


def remove(api, vhosts: dict[str, str], users: dict[str, str], source: dict | None = None) -> None:
    """Delete the test's vhosts, users and the global parameters of ``source``; shovels first: a shovel still reconnecting while its
    vhost is deleted and created again declares its source queue in the new vhost (seen with
    RabbitMQ 3.10.8)."""
    for entry in api.get("parameters", "shovel"):
        if entry["vhost"] in vhosts.values():
            api.delete("parameters", "shovel", entry["vhost"], entry["name"])
    wait_until(lambda: not [s for s in api.get("shovels") if s.get("vhost") in vhosts.values()], "the shovels stopping")
    # federation links likewise: RabbitMQ 4.3.6 on Khepri was seen to keep a broken exchange record
    # when a vhost was deleted and made again while its links still ran (the node then failed to
    # restart); the links stop with the policies that start them
    for entry in api.get("policies"):
        if entry["vhost"] in vhosts.values():
            api.delete("policies", entry["vhost"], entry["name"])
    wait_until(lambda: not [link for link in api.get("federation-links") if link.get("vhost") in vhosts.values()],
               "the federation links stopping")
    for new in vhosts.values():
        api.delete("vhosts", new)
    for new in users.values():
        api.delete("users", new)
    for parameter in (source or {}).get("global_parameters", []):
        api.delete("global-parameters", parameter["name"])


REFUSES_DANGLING_BINDINGS = (3, 13)
"""From 3.13 a definitions import refuses a binding to a queue or exchange it does not hold
(``resources_missing``; 3.10 to 3.12 skip it silently: rabbit_definitions)."""


def held_by(document: dict, version: tuple[int, ...]) -> tuple[dict, list[str]]:
    """What a broker of ``version`` can hold of a definitions file, and why it refuses the rest:
    no ``ha-*`` policy keys from 4.0 on (a policy left empty goes), no binding to an undeclared
    queue or exchange from 3.13 on."""
    held, why = json.loads(json.dumps(document)), []
    if not has_classic_mirroring(version):
        for policy in held.get("policies", []):
            policy["definition"] = {k: v for k, v in policy["definition"].items() if not k.startswith("ha-")}
        kept = [p for p in held.get("policies", []) if p["definition"]]
        if kept != document.get("policies", []):
            why.append("are not recognised policy settings")
        held["policies"] = kept
    if version >= REFUSES_DANGLING_BINDINGS:
        declared = {(kind, e["vhost"], e["name"]) for kind in ("queues", "exchanges") for e in held.get(kind, [])}
        kept = [b for b in held.get("bindings", []) if (b["destination_type"] + "s", b["vhost"], b["destination"]) in declared
                and (b["source"].startswith("amq.") or ("exchanges", b["vhost"], b["source"]) in declared)]
        if len(kept) != len(held.get("bindings", [])):
            why.append("resources_missing")
        held["bindings"] = kept
    return held, why


@pytest.mark.parametrize("name", FILES)
def test_every_real_world_file_round_trips_through_the_broker(name, run, api, monkeypatch, tmp_path, broker_version):
    prefix = f"topology-test-{uuid.uuid4().hex[:6]}"
    source, vhosts, users = into_test_names(json.loads((REALWORLD / name).read_text()), prefix)
    try:
        if name in REFUSED_BY_RABBITMQ:  # nothing to round-trip: the broker refuses the file as it is
            response = load_definitions(api, source)
            assert response.status_code == 400 and REFUSED_BY_RABBITMQ[name] in response.text
            return
        held, refusals = held_by(source, broker_version)
        if refusals:  # this version refuses the file as it is: say why, then round-trip what it holds
            response = load_definitions(api, source)
            assert response.status_code == 400 and any(why in response.text for why in refusals), response.text[:300]
            for new in vhosts.values():
                api.delete("vhosts", new)
        round_trip(run, api, monkeypatch, tmp_path, held, vhosts, users, {u: f"pw-{u}" for u in users.values()})
    finally:
        for new in vhosts.values():
            api.delete("vhosts", new)
        for new in users.values():
            api.delete("users", new)


FULL_EXPORT = ("--include-connecting-user", "--password-variables")
"""The export options that bring the connecting user and every password along (as variables)."""


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("options", [(), FULL_EXPORT], ids=["default", "full"])
def test_a_generated_broker_with_every_object_kind_round_trips(seed, options, run, api, monkeypatch, tmp_path,
                                                               broker_version):
    """A broker generated from ``seed`` (tests/generate.py): every kind of object and setting the
    tool manages, names with slashes, percent signs, spaces, dollars and non-ASCII letters; exported
    as an adopter does (users without passwords, no connecting user), and with everything."""
    source, passwords = generate.definitions(seed, f"topology-test-{uuid.uuid4().hex[:6]}", broker_version,
                                              AMQP_ADDRESS)
    vhosts = {v["name"]: v["name"] for v in source["vhosts"]}
    try:
        round_trip(run, api, monkeypatch, tmp_path, source, vhosts, {u["name"]: u["name"] for u in source["users"]},
                   passwords, options)
    finally:
        remove(api, vhosts, {u["name"]: u["name"] for u in source["users"]}, source)


def vhost_settings(api, vhosts: dict[str, str]) -> dict:
    """What the definitions of RabbitMQ 3.10 leave out of a vhost: its metadata and tracing."""
    keys = ("name", "description", "tags", "tracing", "default_queue_type")
    return {v["name"]: {k: v.get(k) for k in keys} for v in api.get("vhosts") if v["name"] in vhosts.values()}


def round_trip(run, api, monkeypatch, tmp_path, source: dict, vhosts: dict[str, str], users: dict[str, str],
               passwords: dict[str, str], options: tuple[str, ...] = ()):
    """Load ``source`` into the broker, export (with ``options``), plan: empty. Then delete what was
    loaded and apply the export: the broker holds the same definitions as after loading the file;
    and the same again after loading the export rendered as a definitions document. ``passwords``:
    of the users that have one, by name (only ``--password-variables`` asks for them)."""
    response = load_definitions(api, source)
    assert response.status_code < 400, response.text[:300]
    loaded, settings = settled(api, vhosts, source), vhost_settings(api, vhosts)
    out = tmp_path / "exported"
    arguments = [a for v in sorted(vhosts.values()) for a in ("--vhost", v)]
    exported = run("export", *arguments, *options, "--out", str(out))
    assert exported.code == 0, exported.err
    passwords = {**passwords, BROKER_AUTH[0]: BROKER_AUTH[1]}  # it created the vhosts: it has a permission
    if "--include-connecting-user" not in options:
        # left out, and said so; creating the vhosts again gives it the same permissions as loading them did
        assert f"skipped: user {BROKER_AUTH[0]!r} and its permissions" in exported.err
    for line in exported.out.splitlines():
        if not line.startswith("  "):
            continue
        variable, what = line.strip().split(": ", 1)
        user = re.fullmatch(r"the password of user (.*)", what)
        assert user is None or "--password-variables" in options, line
        if user is not None:
            monkeypatch.setenv(variable, passwords[ast.literal_eval(user[1])])
            continue
        uri = re.fullmatch(r"the URI of (shovel|upstream) (.*) in vhost (.*) \((\w+)\), with its password", what)
        assert uri is not None, line
        component = "shovel" if uri[1] == "shovel" else "federation-upstream"
        key = {"source_uri": "src-uri", "destination_uri": "dest-uri", "uri": "uri"}[uri[4]]
        parameter = next(p for p in source["parameters"] if (p["component"], p["name"], p["vhost"]) ==
                         (component, ast.literal_eval(uri[2]), ast.literal_eval(uri[3])))
        monkeypatch.setenv(variable, parameter["value"][key])
    plan = run("plan", str(out), "--prune", "--format", "json")
    assert plan.code == 0, plan.err
    assert json.loads(plan.out)["changes"] == []

    remove(api, vhosts, users, source)
    applied = run("apply", str(out), "--auto-approve")
    assert applied.code == 0, applied.err
    assert settled(api, vhosts, source) == loaded
    assert vhost_settings(api, vhosts) == settings

    # the export rendered as definitions (real URIs, hashed passwords) loads to the same again
    rendered = tmp_path / "rendered.json"
    result = run("render", str(out), "--format", "definitions", "--secrets", "resolve", "--out", str(rendered))
    assert result.code == 0, result.err
    assert rendered.stat().st_mode & 0o777 == 0o600
    remove(api, vhosts, users, source)
    response = load_definitions(api, json.loads(rendered.read_text()))
    assert response.status_code < 400, response.text[:300]
    assert settled(api, vhosts, source) == loaded
    assert vhost_settings(api, vhosts) == settings


def test_two_vhosts_whose_names_read_the_same_as_files_are_both_exported(run, api, tmp_path):
    prefix = f"topology-test-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-x/y", f"{prefix}-x_2Fy"]
    try:
        for index, name in enumerate(names):
            api.put("vhosts", name)
            api.put("queues", name, f"q{index}", body={"durable": True})
        out = tmp_path / "exported"
        exported = run("export", *[a for n in names for a in ("--vhost", n)], "--no-users", "--out", str(out))
        assert exported.code == 0, exported.err
        assert len(list((out / "vhosts").glob("*.yaml"))) == 2
        plan = run("plan", str(out), "--format", "json")
        assert plan.code == 0 and json.loads(plan.out)["changes"] == [], plan.out + plan.err
        assert sorted(json.loads(plan.out)["vhosts"]) == sorted(names)
    finally:
        for name in names:
            api.delete("vhosts", name)
