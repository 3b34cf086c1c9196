"""Unit tests for shovels and federation upstreams: the file format, the broker's values,
URI masking, credentials tokens, saved-plan URIs and their version rules."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import load_problems as problems
from tests.conftest import load_text
from topology import redact
from topology.errors import ConfigError, TopologyError
from topology.loader import load
from topology.kinds.parameter import (
    SHOVEL,
    UPSTREAM,
    canonical_value,
    mask_uri,
    password_of,
    passwords,
    resolve_credentials,
    uri_problem,
)
from topology.kinds import PASSWORD_CHANGED, PASSWORD_SET, ShovelState, from_plan
from topology.state import desired_state, State
from topology.validate import check_broker_version
from topology.variables import Variables


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    redact.forget_all()


@pytest.mark.parametrize("uri, masked, password", [
    ("amqp://u:pw@host:5672/v", "amqp://u:***@host:5672/v", "pw"),
    ("amqps://u:p%40ss@host/v?cacertfile=/c.pem", "amqps://u:***@host/v?cacertfile=/c.pem", "p%40ss"),
    ("amqp://u:p@ss@host/v", "amqp://u:***@host/v", "p@ss"),  # an unencoded @: up to the last one
    ("amqp://u@host/v", "amqp://u@host/v", None),
    ("amqp://host:5672/v", "amqp://host:5672/v", None),
    ("amqp://", "amqp://", None),
    ("amqp:///v", "amqp:///v", None),
])
def test_uri_passwords_are_found_and_masked(uri, masked, password):
    assert mask_uri(uri) == masked and password_of(uri) == password


def test_a_key_file_password_in_the_query_is_a_password_too():
    uri = "amqps://h/v?keyfile=/k.pem&password=KEYPASS&verify=verify_peer"
    assert mask_uri(uri) == "amqps://h/v?keyfile=/k.pem&password=***&verify=verify_peer"
    assert passwords(UPSTREAM, {"uri": uri}) == [None, "KEYPASS"]
    assert redact.redact(f"upstream {uri}") == "upstream amqps://h/v?keyfile=/k.pem&password=***&verify=verify_peer"


@pytest.mark.parametrize("template, uri, problem", [
    ("amqp://u:pw@host/v", "amqp://u:pw@host/v", "a password written in the file"),
    ("amqp://u:pre${PW}@host/v", "amqp://u:prex@host/v", "a password written in the file"),
    ("amqp://u:${PW:-hunter2}@host/v", "amqp://u:hunter2@host/v", "a password written in the file"),
    ("${SRC_URI:-amqp://u:pw@h/v}", "amqp://u:pw@h/v", "a password written in the file"),
    ("amqps://h/v?password=KEYPASS", "amqps://h/v?password=KEYPASS", "a password written in the file"),
    ("${URI}", "amqp://u:pa/ss@h/v", "a '/' before the '@' of the user information"),
    ("amqp://u:${PW}@host/v", "amqp://u:x@host/v", None),
    ("amqp://u:${PW1}${PW2}@host/v", "amqp://u:xy@host/v", None),
    ("amqps://h/v?password=${KEY_PASSWORD}", "amqps://h/v?password=x", None),
    ("${SRC_URI}", "amqp://u:p%2Fss@h/v", None),
    ("${SRC_URI:-amqp://}", "amqp://", None),
    ("amqp://u@host/v", "amqp://u@host/v", None),
    ("amqp://", "amqp://", None),
])
def test_uri_problems(template, uri, problem):
    found = uri_problem(template, uri)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_old_shovel_keys_and_single_uri_lists_compare_equal_to_their_current_forms():
    old = {"src-uri": ["amqp://"], "src-queue": "a", "dest-uri": "amqp://", "prefetch-count": 5.0,
           "delete-after": "never", "add-forward-headers": True, "publish-properties": {"delivery_mode": 2}}
    new = {"src-uri": "amqp://", "src-queue": "a", "dest-uri": ["amqp://"], "src-prefetch-count": 5,
           "src-delete-after": "never", "dest-add-forward-headers": True, "dest-publish-properties": {"delivery_mode": 2}}
    assert canonical_value(SHOVEL, old) == canonical_value(SHOVEL, new)
    # a current key wins over an old one
    assert canonical_value(SHOVEL, {"prefetch-count": 1, "src-prefetch-count": 2})["src-prefetch-count"] == 2
    assert canonical_value(UPSTREAM, {"uri": ["amqp://a", "amqp://b"]})["uri"] == ["amqp://a", "amqp://b"]


def test_friendly_fields_become_the_brokers_keys(tmp_path):
    topology = load_text(tmp_path, """
        vhosts:
          v:
            shovels:
              s:
                source_uri: ["${A_URI}", "amqp://fallback"]
                source_exchange: in
                source_exchange_key: "#"
                destination_uri: amqp://
                destination_exchange: out
                delete_after: queue-length
                add_forward_headers: true
                reconnect_delay: 2.5
                parameters: {dest-add-timestamp-header: true}
            federation_upstreams:
              u: {uri: amqp://, expires: 1h, message_ttl: 30s, trust_user_id: true, ack_mode: on-publish}
            federation_upstream_sets:
              set: [{upstream: u, max_hops: 2}, {upstream: other}]
        """, {"A_URI": "amqp://x:secret-a@a/v"})
    state = desired_state(topology)
    shovel = state.objects[("shovel", "v", "s")]
    assert shovel.secret_value == {
        "src-uri": ["amqp://x:secret-a@a/v", "amqp://fallback"], "src-exchange": "in", "src-exchange-key": "#",
        "dest-uri": "amqp://", "dest-exchange": "out", "src-delete-after": "queue-length",
        "dest-add-forward-headers": True, "reconnect-delay": 2.5, "dest-add-timestamp-header": True}
    assert shovel.value["src-uri"] == ["amqp://x:***@a/v", "amqp://fallback"] and shovel.credentials == PASSWORD_SET
    assert shovel.identity()["uris"] == {"src-uri": ["${A_URI}", "amqp://fallback"]}
    assert "secret-a" not in repr(shovel) and "secret-a" not in str(shovel.props())
    upstream = state.objects[("federation_upstream", "v", "u")]
    assert upstream.value == {"uri": "amqp://", "expires": 3600000, "message-ttl": 30000, "trust-user-id": True,
                              "ack-mode": "on-publish"}
    assert upstream.credentials is None and "uris" not in upstream.identity()
    assert state.objects[("federation_upstream_set", "v", "set")].value == [
        {"upstream": "u", "max-hops": 2}, {"upstream": "other"}]
    assert redact.redact("amqp://x:secret-a@a/v and secret-a") == "amqp://x:***@a/v and ***"


@pytest.mark.parametrize("shovel, message", [
    ("{source_uri: amqp://, destination_uri: amqp://}", "give exactly one of source_queue and source_exchange"),
    ("{source_uri: amqp://, source_queue: a, source_exchange: b, destination_uri: amqp://}",
     "give exactly one of source_queue and source_exchange"),
    ("{source_uri: amqp://, source_queue: a, destination_uri: amqp://, destination_queue: b, destination_exchange: c}",
     "give destination_queue or destination_exchange, not both"),
    ("{source_uri: amqp://, source_queue: a, destination_uri: amqp://, ack_mode: no-ack, delete_after: 5}",
     "ack_mode no-ack cannot be used with a numeric delete_after"),
    ("{source_uri: amqp://, source_queue: a, destination_uri: amqp://, parameters: {dest-uri: 'amqp://u:p@h'}}",
     "give the URI as destination_uri, not as the raw parameter 'dest-uri'"),
    ("{source_uri: amqp://, source_queue: a, destination_uri: amqp://, ack_mode: sometimes}", "on-confirm"),
    ("{source_uri: [], source_queue: a, destination_uri: amqp://}", "source_uri: an empty list: give at least one URI"),
])
def test_shovel_mistakes_are_located(tmp_path, shovel, message):
    found = problems(tmp_path, f"vhosts:\n  v:\n    shovels:\n      s: {shovel}\n")
    assert len(found) == 1 and "vhost 'v' shovel 's'" in found[0] and message in found[0], found


def test_uri_passwords_come_from_the_environment_only(tmp_path):
    literal = problems(tmp_path, "vhosts:\n  v:\n    federation_upstreams:\n      u: {uri: 'amqp://a:b@h'}\n")
    assert literal == ["t.yaml:4: vhost 'v' federation upstream 'u' uri: a password written in the file: take the URI "
                       "from the environment (${VARIABLE}, without a default), or its password alone "
                       "(amqp://user:${PASSWORD}@host)".replace("t.yaml", str(tmp_path / "t.yaml"))]
    in_list = problems(tmp_path, "vhosts:\n  v:\n    federation_upstreams:\n      u:\n        uri:\n"
                                 "          - amqp://\n          - amqp://a:b@h\n")
    assert len(in_list) == 1 and ":7: " in in_list[0] and "uri #2" in in_list[0]
    # a values file cannot give a URI: it is read from the environment only
    path = tmp_path / "t.yaml"
    path.write_text("vhosts:\n  v:\n    federation_upstreams:\n      u: {uri: '${UP_URI}'}\n", encoding="utf-8")
    values = tmp_path / "values.yaml"
    values.write_text("UP_URI: amqp://h\n", encoding="utf-8")
    from topology.engine import load_valid

    with pytest.raises(ConfigError) as info:
        load_valid([str(path)], [str(values)])
    assert str(info.value.problems[0]).endswith("undefined variable UP_URI: set it in the environment")
    offline = load_valid([str(path)], [str(values)], offline=True)  # validate without the secrets
    assert offline.vhosts["v"].federation_upstreams["u"].spec.uri == "${UP_URI}"
    # nor through an alias from elsewhere in the file
    path.write_text("vhosts:\n  v:\n    description: &up '${UP_URI}'\n    federation_upstreams:\n      u: {uri: *up}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_valid([str(path)], [str(values)])
    assert "UP_URI is set in" in str(info.value.problems[0]) and "come from the environment only" in str(info.value.problems[0])


def states(desired_value: dict, live_value: dict | None) -> ShovelState:
    desired, live = State(), State()
    desired.add(ShovelState.of_value("v", "s", desired_value))
    if live_value is not None:
        live.add(ShovelState.of_value("v", "s", live_value))
    resolve_credentials(desired, live)
    return desired.objects[("shovel", "v", "s")]


def test_a_changed_uri_password_is_a_token_never_the_password():
    base = {"src-uri": "amqp://u:one@h/v", "src-queue": "a", "dest-uri": "amqp://"}
    assert states(base, base).credentials == PASSWORD_SET
    changed = states({**base, "src-uri": "amqp://u:two@h/v"}, base)
    assert changed.credentials == PASSWORD_CHANGED and changed.props()["value"] == states(base, base).props()["value"]
    assert changed.end_props()["credentials"] == PASSWORD_SET
    assert states(base, None).credentials == PASSWORD_SET  # a new shovel
    assert states({**base, "src-uri": "amqp://h/v"}, base).credentials is None  # no password now: the URI differs
    assert "one" not in str(changed.props()) and "two" not in str(changed.props())


def test_a_saved_plan_rebuilds_uris_from_the_environment(monkeypatch):
    props = {"value": {"src-uri": "amqp://u:***@h/v", "src-queue": "a", "dest-uri": "amqp://"}, "credentials": "changed"}
    identity = {"vhost": "v", "name": "s", "uris": {"src-uri": "amqp://u:${S_PASSWORD}@h/v"}}
    monkeypatch.setenv("S_PASSWORD", "from-env")
    rebuilt = from_plan("shovel", identity, props)
    assert rebuilt.secret_value["src-uri"] == "amqp://u:from-env@h/v" and rebuilt.value == props["value"]
    monkeypatch.delenv("S_PASSWORD")
    with pytest.raises(TopologyError, match="undefined variable S_PASSWORD"):
        from_plan("shovel", identity, props)
    monkeypatch.setenv("S_URI", "amqp://u:pw@elsewhere/v")
    with pytest.raises(TopologyError, match="holds another URI than when the plan was made"):
        from_plan("shovel", {**identity, "uris": {"src-uri": "${S_URI}"}}, props)


def test_saved_plans_keep_uri_references_and_mask_literal_passwords():
    document, _ = redact.hide({"uris": {"src-uri": "amqp://u:${S_PASSWORD}@h/v", "dest-uri": "amqp://u:${A}${B}@h"},
                               "other": "amqp://u:pw@h"})
    assert document == {"uris": {"src-uri": "amqp://u:${S_PASSWORD}@h/v", "dest-uri": "amqp://u:${A}${B}@h"},
                        "other": "amqp://u:***@h"}


def test_a_masked_password_is_never_sent(monkeypatch):
    props = {"value": {"uri": "amqp://u:***@h/v"}, "credentials": "set"}
    with pytest.raises(TopologyError, match="masked in the plan file"):
        from_plan("federation_upstream", {"vhost": "v", "name": "u", "uris": {"uri": "amqp://u:***@h/v"}}, props)


def test_a_saved_update_rebuilds_only_the_planned_uri(monkeypatch):
    from topology.plan import change_from_dict

    monkeypatch.setenv("S_PASSWORD", "new")
    change = change_from_dict({
        "action": "update", "kind": "shovel", "vhost": "v", "name": "s", "reason": "", "fingerprint": "",
        "identity": {"vhost": "v", "name": "s", "uris": {"src-uri": "amqp://u:${S_PASSWORD}@new-host/v"}},
        "diff": {}, "before": {"value": {"src-uri": "amqp://u:***@old-host/v"}, "credentials": "set"},
        "after": {"value": {"src-uri": "amqp://u:***@new-host/v"}, "credentials": "set"}})
    assert change.after.secret_value == {"src-uri": "amqp://u:new@new-host/v"}
    assert change.before.value == {"src-uri": "amqp://u:***@old-host/v"}


def test_uris_carried_by_aliases_and_merge_keys_keep_their_templates(tmp_path):
    path = tmp_path / "aliases.yaml"
    path.write_text(textwrap.dedent("""
        vhosts:
          v:
            shovels:
              a: &shovel {source_uri: "${SRC_URI}", source_queue: a, destination_uri: &dest "amqp://u:${DEST_PASSWORD}@h/v"}
              b:
                <<: *shovel
                source_queue: b
            federation_upstreams:
              u: {uri: *dest}
        """), encoding="utf-8")
    topology = load([str(path)], Variables(environment={"SRC_URI": "amqp://u:one@h/v", "DEST_PASSWORD": "two"}))
    state = desired_state(topology)
    for name in ("a", "b"):
        assert state.objects[("shovel", "v", name)].identity()["uris"] == {
            "src-uri": "${SRC_URI}", "dest-uri": "amqp://u:${DEST_PASSWORD}@h/v"}
    assert state.objects[("federation_upstream", "v", "u")].identity()["uris"] == {"uri": "amqp://u:${DEST_PASSWORD}@h/v"}


@pytest.mark.parametrize("text, version, message, accepted", [
    ("shovels:\n      s: {source_uri: amqp://, source_queue: a, destination_uri: amqp://, source_predeclared: true}",
     "3.13", "shovel source_predeclared or destination_predeclared needs RabbitMQ 4.0 or later", "4.0"),
    ("shovels:\n      s: {source_uri: amqp://, source_queue: a, destination_uri: amqp://, destination_protocol: local}",
     "4.1", "shovel protocol local needs RabbitMQ 4.2 or later", "4.2"),
    ("federation_upstreams:\n      u: {uri: amqp://, queue_type: quorum}", "3.13.0",
     "federation upstream queue_type needs RabbitMQ 3.13.1 or later", "3.13.1"),
    ("federation_upstream_sets:\n      s: [{upstream: u, ha_policy: all}]", "3.13.1",
     "federation upstream ha_policy is not supported from RabbitMQ 3.13.1 on", "3.13.0"),
    ("queues:\n      q: {durable: false}", "4.3", "a transient non-exclusive queue (durable: false)", "4.2.9"),
    ("queues:\n      q: {arguments: {x-queue-master-locator: min-masters}}", "4.3.1", "queue-master-locator", "3.13"),
    ("policies:\n      p: {pattern: q, definition: {queue-master-locator: min-masters}}", "4.3", "queue-master-locator",
     "4.2"),
])
def test_version_rules_of_the_new_objects(tmp_path, text, version, message, accepted):
    topology = load_text(tmp_path, f"vhosts:\n  v:\n    {text}\n")
    numbers = tuple(int(p) for p in version.split("."))
    with pytest.raises(ConfigError) as info:
        check_broker_version(topology, numbers, version, offline=True)
    assert any(message in str(p) for p in info.value.problems), info.value.problems
    check_broker_version(topology, tuple(int(p) for p in accepted.split(".")), accepted)  # no error there


def test_declared_shovels_cannot_match_ignore_and_uri_values_are_not_echoed(tmp_path):
    found = problems(tmp_path, """
        vhosts:
          v:
            ignore: ["tmp.*"]
            shovels:
              tmp.mover: {source_uri: amqp://, source_queue: a, destination_uri: amqp://}
        """)
    assert any("shovel 'tmp.mover': is declared but matches the ignore pattern 'tmp.*'" in p for p in found), found
    found = problems(tmp_path, """
        vhosts:
          v:
            federation_upstreams:
              up: {uri: ["${UP_URI}", 5]}
        """, {"UP_URI": "amqp://u:topsecret@h/v"})
    assert any("federation upstream 'up' uri" in p for p in found) and not any("topsecret" in p for p in found), found


def test_the_users_a_uri_connects_as():
    from topology.kinds.parameter import users_of

    value = {"src-uri": ["amqp://mover:pw@h/v", "amqp://fallback%40x@h2"], "dest-uri": "amqp://", "src-queue": "q"}
    assert users_of(SHOVEL, value) == {"mover", "fallback@x"}
    assert users_of(UPSTREAM, {"uri": "amqps://h/v?password=x"}) == set()
