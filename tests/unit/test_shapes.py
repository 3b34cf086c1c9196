"""The quick check of an answer's shape agrees with the one that finds the words (pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from topology.broker import shapes

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.sampled_from(["", "q", "x-1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "vhost", "type", "arguments", "source", "destination", "routing_key", "pattern",
                         "definition", "priority", "apply-to", "component", "value", "user", "queues", "bindings",
                         "exchanges", "policies", "parameters", "vhosts", "users"]), children, max_size=6),
    max_leaves=30,
)
_ENTRY = st.fixed_dictionaries(
    {"name": st.sampled_from(["q", "x"]) | st.none() | st.integers()},
    optional={"vhost": st.sampled_from(["v"]) | st.none(), "arguments": st.dictionaries(st.sampled_from(["a"]), _JSON)
              | st.none() | st.lists(st.integers(), max_size=1), "type": st.sampled_from(["topic"]) | st.booleans(),
              "pattern": st.sampled_from([".*"]), "definition": st.just({}) | st.none(), "priority": st.integers()
              | st.booleans() | st.none(), "source": st.sampled_from(["x"]), "destination": st.sampled_from(["q"]),
              "component": st.just("shovel"), "value": _JSON, "user": st.just("u")})
_DOCUMENT = st.dictionaries(st.sampled_from(["queues", "exchanges", "bindings", "policies", "parameters", "vhosts",
                                              "users", "permissions", "global_parameters"]),
                            st.lists(_ENTRY, max_size=4) | _JSON, max_size=5)
_SHAPES = [shapes.DEFINITIONS, shapes.OVERVIEW, [shapes.QUEUE], shapes.QUEUE_DETAILS, [shapes.EXCHANGE],
           shapes.VHOST_LIMITS, "str", "int", "any", [[shapes.NAMED]]]


@settings(max_examples=200, deadline=None)
@given(value=_DOCUMENT | _JSON | st.lists(_ENTRY, max_size=4), shape=st.sampled_from(_SHAPES))
def test_the_quick_check_and_the_worded_one_agree(value, shape):
    assert shapes._fits(value, shape) == (shapes._problem(value, shape) is None)
    assert (shapes.shape_problem(value, shape, "here") is None) == (shapes._problem(value, shape, "here") is None)


_FIELD = st.sampled_from(["x", ""]) | st.none() | st.booleans() | st.integers() | st.just({}) | st.just([])
_BINDING_ENTRY = st.fixed_dictionaries(
    {}, optional={name: _FIELD for name in ("source", "destination", "vhost", "destination_type", "routing_key",
                                            "arguments", "exclusive", "name", "durable", "value", "component")})


@settings(max_examples=300, deadline=None)
@given(entries=st.lists(_BINDING_ENTRY | _FIELD, max_size=6),
       shape=st.sampled_from([[shapes.BINDING], [{**shapes.QUEUE, "exclusive": "bool"}], [shapes.PARAMETER],
                              [shapes.POLICY], [{"name": "str", "durable?": "bool"}]]))
def test_a_list_checked_a_field_at_a_time_agrees_with_an_entry_at_a_time(entries, shape):
    """The quick check of a list of maps (a field over every entry) accepts what the check of each
    entry accepts, and nothing else: missing, null, a boolean where a number goes, a list for a map."""
    checks = shapes._checks(shape[0])
    each = all(isinstance(entry, dict) and shapes._map_fits(entry, checks) for entry in entries)
    if shapes._column_fits(entries, checks):
        assert each
    assert shapes._fits(entries, shape) == each == (shapes._problem(entries, shape) is None)
