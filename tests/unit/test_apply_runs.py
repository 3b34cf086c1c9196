"""How apply splits a plan into runs (pure): definitions imports, parallel runs, one at a time."""

from __future__ import annotations

from topology.apply import Applier, ApplyOptions, definitions_document
from topology.diff import CREATE, DELETE, REPLACE, UPDATE, Change
from topology.kinds import (
    BindingState,
    ExchangeState,
    OperatorPolicyState,
    PolicyState,
    QueueState,
    UserState,
    VhostState,
)


def runs(changes, **options):
    return [(how, [c.name for c in run]) for how, run in Applier(None, ApplyOptions(**options))._runs(changes)]  # type: ignore[arg-type]


def create(resource):
    return Change(CREATE, None, resource)


def test_enough_creations_in_a_row_become_one_import_and_fewer_do_not():
    changes = [create(VhostState(vhost="v")),
               create(ExchangeState(vhost="v", exchange="x")),
               create(QueueState(vhost="v", queue="q1")),
               create(QueueState(vhost="v", queue="q2")),
               create(BindingState(vhost="v", source="x", destination="q1")),
               create(PolicyState(vhost="v", policy="p", pattern=".*")),
               create(OperatorPolicyState(vhost="v", policy="o", pattern=".*"))]
    assert runs(changes, bulk_min=5) == [
        ("one", ["v"]), ("import", ["x", "q1", "q2", "x -> queue q1 []", "p"]), ("one", ["o"])]
    # below the threshold: one request each, same kinds in a row at once
    assert runs(changes, bulk_min=6) == [
        ("one", ["v"]), ("one", ["x"]), ("parallel", ["q1", "q2"]), ("one", ["x -> queue q1 []"]), ("one", ["p"]), ("one", ["o"])]
    assert runs(changes, bulk_min=None, workers=1) == [("one", [c.name for c in [change]]) for change in changes]


def test_a_replacement_breaks_an_import_run_and_stays_alone():
    before = QueueState(vhost="v", queue="q2", arguments={"x-max-length": 1})
    changes = [create(QueueState(vhost="v", queue="q1")),
               Change(REPLACE, before, QueueState(vhost="v", queue="q2")),
               create(QueueState(vhost="v", queue="q3")),
               create(QueueState(vhost="v", queue="q4"))]
    assert runs(changes, bulk_min=2) == [("one", ["q1"]), ("one", ["q2"]), ("import", ["q3", "q4"])]


def test_deletions_run_in_parallel_only_for_independent_kinds():
    queue = QueueState(vhost="v", queue="q")
    binding = BindingState(vhost="v", source="x", destination="q", routing_key="a")
    other = BindingState(vhost="v", source="x", destination="q", routing_key="b")
    changes = [Change(DELETE, binding, None), Change(DELETE, other, None),
               Change(DELETE, queue, None), Change(DELETE, QueueState(vhost="v", queue="r"), None),
               Change(UPDATE, UserState(user="u"), UserState(user="u", tags=("a",))),
               Change(UPDATE, UserState(user="w"), UserState(user="w", tags=("a",)))]
    assert [how for how, _ in runs(changes)] == ["parallel", "queues", "one", "one"]
    assert [how for how, _ in runs(changes, workers=1)] == ["one"] * 6


def test_the_import_document_says_what_the_single_requests_would():
    changes = [create(ExchangeState(vhost="v", exchange="x", type="topic", internal=True, arguments={"alternate-exchange": "ae"})),
               create(QueueState(vhost="v", queue="q", type="quorum", arguments={"x-max-length": 5})),
               create(BindingState(vhost="v", source="x", destination="q", routing_key="k", arguments={"a": 1})),
               create(PolicyState(vhost="v", policy="p", pattern="^q$", apply_to="queues", priority=3,
                                  definition={"max-length": 9}))]
    assert definitions_document(changes) == {
        "exchanges": [{"name": "x", "type": "topic", "durable": True, "auto_delete": False, "internal": True,
                       "arguments": {"alternate-exchange": "ae"}}],
        "queues": [{"name": "q", "durable": True, "auto_delete": False,
                    "arguments": {"x-max-length": 5, "x-queue-type": "quorum"}}],
        "bindings": [{"source": "x", "destination": "q", "destination_type": "queue", "routing_key": "k",
                      "arguments": {"a": 1}}],
        "policies": [{"name": "p", "pattern": "^q$", "apply-to": "queues", "priority": 3,
                      "definition": {"max-length": 9}}],
    }


def test_bindings_that_a_deletion_drops_need_no_request_of_their_own():
    from topology.apply import fold_bindings

    queue, kept_queue = QueueState(vhost="v", queue="q"), QueueState(vhost="v", queue="kept")
    exchange, other = ExchangeState(vhost="v", exchange="x"), ExchangeState(vhost="v", exchange="y")
    to_queue = Change(DELETE, BindingState(vhost="v", source="x", destination="q"), None)
    from_exchange = Change(DELETE, BindingState(vhost="v", source="x", destination="kept"), None)
    to_exchange = Change(DELETE, BindingState(vhost="v", source="amq.fanout", destination="y",
                                              destination_type="exchange"), None)
    alone = Change(DELETE, BindingState(vhost="v", source="amq.direct", destination="kept", routing_key="k"), None)
    elsewhere = Change(DELETE, BindingState(vhost="w", source="x", destination="q"), None)
    queue_deleted, exchange_deleted = Change(DELETE, queue, None), Change(DELETE, exchange, None)
    other_deleted = Change(DELETE, other, None)
    replaced = Change(REPLACE, kept_queue, QueueState(vhost="v", queue="kept", type="quorum"))
    # the plan's order: bindings, then queues, then exchanges
    changes = [to_queue, from_exchange, to_exchange, alone, elsewhere, replaced, queue_deleted, exchange_deleted,
               other_deleted]
    folded = fold_bindings(changes)
    # a binding from a deleted exchange to a deleted queue goes with the queue, deleted first
    assert folded == {id(queue_deleted): [to_queue], id(exchange_deleted): [from_exchange],
                      id(other_deleted): [to_exchange]}
    assert fold_bindings([to_queue, alone, replaced]) == {}  # a replacement re-creates what it drops
