"""On brokers whose definitions export is slow at scale (before RabbitMQ 4.3.3), the tool reads a
vhost from the broker's lists instead; the objects it sees must be those of the export, whatever
the vhost holds. On later brokers it reads the export itself."""

import pytest

from conftest import connect, management_client
from topology.broker import lists
from topology.rules.versions import has_slow_export

pytestmark = pytest.mark.broker

SECTIONS = ("queues", "exchanges", "bindings", "policies", "parameters")
BROKER_SECTIONS = (*SECTIONS, "users", "permissions", "topic_permissions", "global_parameters")


def _objects(document: dict, sections: tuple[str, ...] = SECTIONS, with_vhost: bool = False) -> dict:
    """Each section's objects, in any order; without their vhost unless ``with_vhost`` (one vhost's
    export: 3.10 writes it on policies and parameters, 4.0 does not); a password hash as a digest
    of it (compared, never shown)."""
    import hashlib

    def entry_of(entry: dict) -> str:
        if "password_hash" in entry:
            entry = {**entry, "password_hash": hashlib.sha256(str(entry["password_hash"]).encode()).hexdigest()[:12]}
        return repr(sorted((k, v) for k, v in entry.items() if with_vhost or k != "vhost"))

    return {section: sorted(entry_of(entry) for entry in document.get(section) or []) for section in sections}


def _state(vhost: str, definitions: dict):
    """The objects the tool reads of one vhost's definitions."""
    from topology.broker.live import definitions_state
    from topology.kinds import VhostState
    from topology.state import State

    state = State()
    definitions_state(VhostState(vhost=vhost), definitions, state)
    return state.objects, state.internal


def _every_kind(api, vhost):
    """A vhost with an object of every section of its export."""
    api.put("vhosts", vhost)
    api.put("exchanges", vhost, "x", body={"type": "topic", "arguments": {"alternate-exchange": "ae"}})
    api.put("exchanges", vhost, "xi", body={"type": "headers", "internal": True, "durable": False})
    api.put("queues", vhost, "plain", body={"arguments": {"x-message-ttl": 60000}})
    api.put("queues", vhost, "qq", body={"durable": True, "arguments": {"x-queue-type": "quorum"}})
    api.put("queues", vhost, "st", body={"durable": True, "arguments": {"x-queue-type": "stream"}})
    api.post("bindings", vhost, "e", "x", "q", "plain", body={"routing_key": "a.#"})
    api.post("bindings", vhost, "e", "amq.topic", "q", "qq", body={"routing_key": "b"})
    api.post("bindings", vhost, "e", "x", "e", "xi", body={"routing_key": "c", "arguments": {"x-match": "any"}})
    api.put("policies", vhost, "p", body={"pattern": "^plain$", "definition": {"max-length": 10}, "apply-to": "queues"})
    api.put("operator-policies", vhost, "op", body={"pattern": "^qq$", "definition": {"max-length": 100},
                                                     "apply-to": "queues"})
    api.put("vhost-limits", vhost, "max-queues", body={"value": 50})
    api.put("parameters", "federation-upstream", vhost, "up", body={"value": {"uri": "amqp://", "expires": 60000}})


def test_the_tool_reads_a_vhost_as_the_broker_exports_it(api, vhost, broker_version):
    _every_kind(api, vhost)
    connection = connect(vhost)  # an exclusive queue, and bindings to it: the export leaves both out
    try:
        channel = connection.channel()
        mine = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(mine, "x", "d")
        channel.queue_bind(mine, "amq.fanout")
        exported = api.get("definitions", vhost)
        client = management_client()
        try:
            read = client.definitions(vhost)
            made = dict(client.requests_made)
        finally:
            client.close()
    finally:
        connection.close()
    assert mine not in {q["name"] for q in read["queues"]}
    # nor the bindings to it (RabbitMQ's export holds them from 4.3.3 on: the tool leaves them out)
    assert mine not in {b["destination"] for b in read["bindings"]}
    if has_slow_export(broker_version):
        # the overview (for the version), then the five lists
        assert made == {"GET": 6}
        # each entry as its list gives it (no copy of each): the export's fields and those of
        # LISTED_ONLY; in the export's fields, the export's objects, and the tool reads the same of both
        for section, entries in read.items():
            assert {key for entry in entries for key in entry} - set(lists.FIELDS[section]) \
                <= set(lists.LISTED_ONLY.get(section, ())), section
        assert _objects({section: [{key: entry[key] for key in lists.FIELDS[section] if key in entry}
                                   for entry in entries] for section, entries in read.items()}) == _objects(exported)
        assert _state(vhost, read) == _state(vhost, exported)
        assert {q["name"] for q in read["queues"]} == {"plain", "qq", "st"}
        assert {(b["source"], b["destination"]) for b in read["bindings"]} == {("x", "plain"), ("amq.topic", "qq"),
                                                                               ("x", "xi")}
        assert {p["component"] for p in read["parameters"]} >= {"federation-upstream", "operator_policy",
                                                                "vhost-limits"}
    else:
        assert made == {"GET": 2}  # the overview, then the export itself
        assert read == lists.without_bindings_to_queues_left_out(exported)


def test_a_vhost_that_is_not_there_reads_as_the_export_says_it(api, vhost):
    from topology.errors import BrokerError

    answer = api.session.get(api.url("definitions", vhost), timeout=30)
    assert answer.status_code == 400  # "vhost_not_found" (the tool reads only the vhosts the broker lists)
    client = management_client()
    try:
        with pytest.raises(BrokerError, match="vhost_not_found"):
            client.definitions(vhost)  # before 4.3.3: the lists answer 404, and the export is asked what it says
    finally:
        client.close()


def _whole(document: dict) -> dict:
    """Each section of a whole broker's export, in any order, each entry with its vhost."""
    return _objects(document, BROKER_SECTIONS, with_vhost=True)


def test_the_tool_reads_the_whole_broker_as_it_exports_it(api, vhost, other_vhost, broker_version):
    from topology.broker.live import live_definitions
    from topology.export import export_definitions

    _every_kind(api, vhost)
    api.put("vhosts", other_vhost, body={"description": "second", "tags": "a,b"})
    api.put("queues", other_vhost, "plain")  # a queue of the same name in another vhost, bound there
    api.post("bindings", other_vhost, "e", "amq.direct", "q", "plain", body={"routing_key": "k"})
    user = f"{vhost}-user"
    api.put("users", user, body={"password": "secret", "tags": "monitoring"})
    try:
        api.put("user-limits", user, "max-connections", body={"value": 10})
        api.put("permissions", vhost, user, body={"configure": "^a", "write": "^b", "read": "^c"})
        api.put("topic-permissions", vhost, user, body={"exchange": "amq.topic", "write": "^x", "read": "^y"})
        connection = connect(vhost)  # an exclusive queue and its bindings: the export leaves them out
        other = connect(other_vhost)
        try:
            channel = connection.channel()
            mine = channel.queue_declare("", exclusive=True).method.queue
            channel.queue_bind(mine, "x", "d")
            # an exclusive queue named as a queue the export keeps in the first vhost: its binding is left out
            other_channel = other.channel()
            other_channel.queue_declare("st", exclusive=True)
            other_channel.queue_bind("st", "amq.direct", "twin")
            exported = api.get("definitions")
            client = management_client()
            try:
                read = client.all_definitions()
                made = dict(client.requests_made)

                class _Exported:  # the same client, but the whole broker's export as RabbitMQ makes it
                    def __getattr__(self, name):
                        return getattr(client, name)

                    def all_definitions(self):
                        return api.get("definitions")

                files = export_definitions(live_definitions(client)).files
                files_of_export = export_definitions(live_definitions(_Exported())).files
            finally:
                client.close()
        finally:
            connection.close()
            other.close()
    finally:
        api.delete("users", user)
    assert mine not in {q["name"] for q in read["queues"]}
    # nor the bindings to it (RabbitMQ's export holds them from 4.3.3 on: the tool leaves them out)
    assert mine not in {b["destination"] for b in read["bindings"]}
    assert ("st", other_vhost) not in {(q["name"], q["vhost"]) for q in read["queues"]}
    assert "twin" not in {b["routing_key"] for b in read["bindings"]}
    assert {v["name"] for v in read["vhosts"]} == {v["name"] for v in exported["vhosts"]}
    # the version it names (which `export --transform quorum` follows)
    assert (read["rabbitmq_version"], read["rabbit_version"]) == (exported["rabbitmq_version"], exported["rabbit_version"])
    if has_slow_export(broker_version):
        # the overview (for the version), then ten lists
        assert made == {"GET": 11}
        assert _whole(read) == _whole(exported)
        assert all(set(v) == {"name"} for v in read["vhosts"])  # the rest is read from the vhost list
    else:
        assert made == {"GET": 2}  # the overview, then the export itself
        expected = lists.without_bindings_to_queues_left_out(exported, every_vhost=True)
        assert _whole(read) == _whole(expected)  # (hashes compared by digest: never shown)
        assert {k: v for k, v in read.items() if k not in _whole(read)} == \
            {k: v for k, v in expected.items() if k not in _whole(expected)}
    # what `topology export` writes is the same, whichever was read
    assert files == files_of_export
    assert {vhost, other_vhost} <= {name.split("/")[-1].removesuffix(".yaml") for name in files}
