"""The index of live bindings by the object whose deletion drops them agrees with the rule it
replaces (pure): what a saved plan's fingerprints and a replacement's re-bindings are made of."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from topology.kinds import BindingState, ExchangeState, QueueState, Resource
from topology.plan import binding_index
from topology.state import State


def _touches(binding: BindingState, resource: Resource) -> bool:
    """The rule, one binding at a time: does the broker drop ``binding`` when ``resource`` is deleted?"""
    if binding.vhost != resource.vhost:
        return False
    if isinstance(resource, QueueState):
        return binding.destination_type == "queue" and binding.destination == resource.queue
    if isinstance(resource, ExchangeState):
        return binding.source == resource.exchange or (
            binding.destination_type == "exchange" and binding.destination == resource.exchange
        )
    return False

_NAMES = st.sampled_from(["a", "b", "c"])
_BINDINGS = st.lists(st.builds(
    BindingState, vhost=st.sampled_from(["v", "w"]), source=_NAMES, destination=_NAMES,
    destination_type=st.sampled_from(["queue", "exchange"]), routing_key=st.sampled_from(["", "k"])), max_size=25)


@settings(max_examples=200, deadline=None)
@given(bindings=_BINDINGS)
def test_the_index_holds_what_each_deletion_drops_in_live_order(bindings):
    live = State()
    for binding in bindings:
        live.add(binding)
    index = binding_index(live)
    kept = [r for r in live.objects.values() if isinstance(r, BindingState)]
    for vhost in ("v", "w"):
        for name in ("a", "b", "c"):
            for resource in (QueueState(vhost=vhost, queue=name), ExchangeState(vhost=vhost, exchange=name)):
                expected = [b for b in kept if _touches(b, resource)]
                assert index.get((resource.kind, vhost, name), []) == expected
