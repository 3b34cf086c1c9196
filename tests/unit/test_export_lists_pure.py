"""A vhost's export made from the broker's lists (topology.broker.lists), without a broker: the
objects the broker's own export leaves out, and the fields it keeps. The same against the broker:
tests/integration/test_export_lists.py."""

from topology.broker import lists


def _queue(name, exclusive=False, **fields):
    return {"name": name, "durable": True, "auto_delete": False, "arguments": {}, "exclusive": exclusive, **fields}


def _binding(source, destination, destination_type="queue", key="k"):
    return {"source": source, "vhost": "v", "destination": destination, "destination_type": destination_type,
            "routing_key": key, "arguments": {}, "properties_key": key}


def test_the_export_leaves_out_exclusive_queues_built_in_exchanges_and_what_binds_them():
    queues = [_queue("kept"), _queue("mine", exclusive=True)]
    exchanges = [{"name": n, "vhost": "v", "type": "direct", "durable": True, "auto_delete": False, "internal": False,
                  "arguments": {}} for n in ("", "amq.direct", "amq.rabbitmq.trace", "x", "amq-like")]
    bindings = [
        _binding("", "kept", key="kept"),  # the default exchange's implicit binding
        _binding("x", "kept"),
        _binding("amq.topic", "kept", key="a.#"),  # from a built-in exchange to a kept queue: kept
        _binding("x", "mine"),  # to an exclusive queue: left out
        _binding("x", "amq-like", "exchange"),
        _binding("x", "", "exchange"),  # to the default exchange: left out
        _binding("x", "gone"),  # to a queue the lists do not hold: left out
    ]
    made = lists.export("v", queues, exchanges, bindings, [], [])
    assert [q["name"] for q in made["queues"]] == ["kept"]
    assert [e["name"] for e in made["exchanges"]] == ["x", "amq-like"]
    assert [(b["source"], b["destination"]) for b in made["bindings"]] == [("x", "kept"), ("amq.topic", "kept"),
                                                                           ("x", "amq-like")]


def test_each_object_keeps_the_fields_of_the_export_and_not_the_lists_vhost():
    # (3.10's export writes the vhost of policies and parameters, 4.0's does not: the tool reads
    # each object's vhost from the vhost it reads, never from the entry)
    made = lists.export(
        "v",
        [_queue("q", type="quorum", node="rabbit@a")],
        [{"name": "x", "vhost": "v", "type": "topic", "durable": False, "auto_delete": True, "internal": True,
          "arguments": {"alternate-exchange": "ae"}, "user_who_performed_action": "guest", "policy": "p"}],
        [_binding("x", "q")],
        [{"vhost": "v", "name": "p", "pattern": "^q", "apply-to": "queues", "definition": {"max-length": 1},
          "priority": 2}],
        [{"vhost": "v", "component": "shovel", "name": "s", "value": {"src-queue": "q"}},
         {"vhost": "other", "component": "shovel", "name": "t", "value": {}}],
    )
    assert made == {
        "queues": [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}}],
        "exchanges": [{"name": "x", "type": "topic", "durable": False, "auto_delete": True, "internal": True,
                       "arguments": {"alternate-exchange": "ae"}}],
        "bindings": [{"source": "x", "destination": "q", "destination_type": "queue", "routing_key": "k",
                      "arguments": {}}],
        "policies": [{"name": "p", "pattern": "^q", "apply-to": "queues", "definition": {"max-length": 1},
                      "priority": 2}],
        "parameters": [{"value": {"src-queue": "q"}, "component": "shovel", "name": "s"}],
    }


def test_a_queue_s_type_comes_from_its_arguments_as_in_the_export_not_from_the_list():
    # the queue list says each queue's type; the export does not, and the tool reads a queue declared
    # without x-queue-type as the vhost's default type either way
    made = lists.export("v", [_queue("q", type="quorum")], [], [], [], [])
    assert "type" not in made["queues"][0]


def test_every_list_is_read_with_the_fields_the_export_keeps():
    assert set(lists.READS) == set(lists.FIELDS) == set(lists.SHAPES)
    for section in ("queues", "exchanges"):  # read with a column list: it must name every field kept
        assert set(lists.FIELDS[section]) <= set(lists.READS[section]["columns"].split(","))
    assert "exclusive" in lists.READS["queues"]["columns"]  # what tells the queues the export leaves out


def test_the_brokers_whose_export_is_slow_are_those_before_4_3_3():
    # the management plugin looks each binding's queue up in a list in every release up to 4.3.2,
    # and streams its export from 4.3.3 on
    from topology.rules.versions import has_slow_export

    assert [has_slow_export(v) for v in ((3, 10, 8), (4, 0, 5), (4, 2, 9), (4, 3, 0), (4, 3, 2))] == [True] * 5
    assert [has_slow_export(v) for v in ((4, 3, 3), (4, 3, 6), (4, 4, 0), ())] == [False] * 4


def test_the_whole_broker_s_export_keeps_each_vhost_s_objects_with_their_vhost():
    def queue(vhost, name, exclusive=False):
        return {**_queue(name, exclusive), "vhost": vhost}

    def binding(vhost, source, destination, key):
        return {**_binding(source, destination, key=key), "vhost": vhost}

    answers = {
        "queues": [queue("a", "q"), queue("b", "q", exclusive=True)],  # the same name, exclusive in b
        "exchanges": [{"name": n, "vhost": v, "type": "direct", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}} for v, n in (("a", "x"), ("b", "amq.direct"))],
        "bindings": [binding("a", "x", "q", "kept"), binding("b", "amq.direct", "q", "left out"),
                     binding("a", "", "q", "q")],
        "policies": [], "parameters": [{"vhost": "b", "component": "shovel", "name": "s", "value": {}}],
        "users": [{"name": "u", "password_hash": "h", "hashing_algorithm": "sha256", "tags": ["monitoring"],
                   "limits": {}, "seen": "not exported"}],
        "vhosts": [{"name": "a"}, {"name": "b", "description": "read from the vhost list"}],
        "permissions": [{"user": "u", "vhost": "a", "configure": ".*", "write": ".*", "read": ".*"}],
        "topic_permissions": [], "global_parameters": [{"name": "internal_cluster_id", "value": "c"}],
    }
    made = lists.export_all(answers, "3.13.7")
    assert made["rabbit_version"] == made["rabbitmq_version"] == "3.13.7"
    assert made["queues"] == [{"name": "q", "durable": True, "auto_delete": False, "arguments": {}, "vhost": "a"}]
    assert [(b["vhost"], b["routing_key"]) for b in made["bindings"]] == [("a", "kept")]
    assert [e["name"] for e in made["exchanges"]] == ["x"]
    assert made["parameters"] == [{"value": {}, "component": "shovel", "name": "s", "vhost": "b"}]
    assert made["users"] == [{"name": "u", "password_hash": "h", "hashing_algorithm": "sha256",
                              "tags": ["monitoring"], "limits": {}}]
    assert made["vhosts"] == [{"name": "a"}, {"name": "b"}]
    assert made["permissions"] == answers["permissions"] and made["global_parameters"] == answers["global_parameters"]


def test_a_list_of_every_vhost_is_read_with_each_entry_s_vhost():
    for section in lists.FIELDS:
        segments, query, shape = lists.read_of(section, None)
        assert segments == (section,) and shape["vhost"] == "str"
        if query and "columns" in query:
            assert {*lists.FIELDS[section], "vhost"} <= set(query["columns"].split(","))
    assert lists.read_of("queues", "v")[0] == ("queues", "v")
    assert lists.read_of("parameters", "v")[0] == ("parameters",)  # no list of one vhost's parameters
    assert lists.read_of("topic_permissions", None)[0] == ("topic-permissions",)


def test_bindings_to_queues_an_export_does_not_hold_are_left_out():
    # RabbitMQ's export holds every binding from 4.3.3 on, those to exclusive queues included
    # (never the queues): the tool reads it as the export before 4.3.3 was
    vhost_export = {"queues": [{"name": "q"}],
                    "bindings": [_binding("x", "q"), _binding("x", "mine"), _binding("x", "y", "exchange")]}
    kept = lists.without_bindings_to_queues_left_out(vhost_export)
    assert [b["destination"] for b in kept["bindings"]] == ["q", "y"]
    whole = {"queues": [{"name": "q", "vhost": "a"}],
             "bindings": [_binding("x", "q"), {**_binding("x", "q"), "vhost": "a"}]}  # _binding's vhost is "v"
    assert lists.without_bindings_to_queues_left_out(whole, every_vhost=True)["bindings"] == [whole["bindings"][1]]
    assert lists.without_bindings_to_queues_left_out(whole) is whole  # nothing left out: the same document


def test_the_objects_of_the_entries_as_listed_are_those_of_the_export():
    """What a plan reads (``as_listed``: no copy of each entry) makes the same objects as the export's
    fields; the queues' column list leaves out the ``type`` the queue list would otherwise say, which
    the export does not hold (see the test above)."""
    from topology.broker.live import definitions_state
    from topology.kinds import VhostState
    from topology.state import State

    assert "type" not in lists.READS["queues"]["columns"].split(",")
    answers = (
        [_queue("q", arguments={"x-queue-type": "quorum", "x-max-length": 5}), _queue("c"), _queue("e", exclusive=True)],
        [{"name": "x", "type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}],
        [_binding("x", "q"), _binding("x", "e"), _binding("x", "x2", "exchange")],
        [{"vhost": "v", "name": "p", "pattern": "^q", "apply-to": "queues", "definition": {"max-length": 1},
          "priority": 2}],
        [{"vhost": "v", "component": "shovel", "name": "s", "value": {"src-queue": "q"}},
         {"vhost": "other", "component": "shovel", "name": "t", "value": {}}],
    )
    states = []
    for as_listed in (False, True):
        state = State()
        definitions_state(VhostState(vhost="v", default_queue_type="quorum"),
                          lists.export("v", *answers, as_listed=as_listed), state)
        states.append(state)
    projected, listed = states
    assert listed.objects == projected.objects and listed.internal == projected.internal
    assert len(projected.objects) == 7  # 2 queues, 1 exchange, 2 bindings, 1 policy, 1 shovel
    listed_entries = lists.export("v", *answers, as_listed=True)
    for section, entries in listed_entries.items():
        extra = {key for entry in entries for key in entry} - set(lists.FIELDS[section])
        assert extra <= set(lists.LISTED_ONLY.get(section, ())), section
