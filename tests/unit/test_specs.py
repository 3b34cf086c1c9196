"""The objects of a plainly valid file built without pydantic (topology.model.specs) are those
the models make (topology.model.format): same fields, defaults and values; and where the
models would convert or refuse a value, the fast path gives up and lets them."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from topology.model import format as models, specs
from topology.model.format import NO_REFERENCES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", specs.SPECS, ids=lambda kind: kind.__name__)
def test_each_kind_has_the_fields_defaults_and_required_fields_of_its_model(kind):
    model = getattr(models, kind.__name__)
    assert list(kind.CHECKS) == list(model.model_fields)  # the same order: validate looks at the fields in it
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert kind.REQUIRED == required
    for name, field in model.model_fields.items():
        if name in required:
            continue
        default = field.default_factory() if field.default_factory is not None else field.default
        assert kind.DEFAULTS[name] == default and type(kind.DEFAULTS[name]) is type(default), name


def _same(fast, model) -> None:
    """``fast`` (a Spec, or maps and lists of them) holds what ``model`` (the pydantic result) holds."""
    if isinstance(fast, specs.Spec):
        assert type(fast).__name__ == type(model).__name__
        assert set(fast.model_fields_set) == set(model.model_fields_set)
        for name in type(model).model_fields:
            _same(getattr(fast, name), getattr(model, name))
    elif isinstance(fast, dict):
        assert type(model) is dict and list(fast) == list(model)
        for key in fast:
            _same(fast[key], model[key])
    elif isinstance(fast, list):
        assert type(model) is list and len(fast) == len(model)
        for one, other in zip(fast, model):
            _same(one, other)
    else:
        assert fast == model and type(fast) is type(model)


def _agree(data) -> specs.Spec | None:
    """Both ways of reading ``data``: what the fast one builds, the models build alike; where the
    models refuse, the fast one gave up."""
    fast = specs.build_file(data)
    try:
        model = models.TopologyFile.model_validate(data, context=NO_REFERENCES)
    except ValidationError:
        assert fast is None, data
        return None
    if fast is not None:
        _same(fast, model)
    return fast


class _Text(str):
    """A text of a subclass (the readers give such for values with ${...} references)."""


ANY = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.sampled_from([2**63, -2**63 - 1, 2**70]),
                st.sampled_from([_Text("x"), _Text("30s"), datetime.date(2026, 1, 2), b"x", {"a"}, "\u0667D",
                                 "1h\r", " 7D", "7D ", "30 s", "\u00a030s", "1e3", "0x10", "+5", "10mib", 2**63 - 1]),
                st.floats(allow_nan=False, width=32), st.sampled_from(
                    ["", "x", "30s", "5m", "10MiB", "10 MB", "7D", "7D\n", "1Y", "-1", "12", " 12 ", "1.5s", "lazy",
                     "default", "drop-head", "reject-publish-dlx", "at-least-once", "balanced", "client-local",
                     "classic", "quorum", "stream", "queue", "exchange", "queues", "exchanges", "all", "topic",
                     "99999999999999999999d", "max-connections", "max-queues"]),
                st.lists(st.sampled_from(["a", "b"]), max_size=2), st.just([1]),
                st.dictionaries(st.sampled_from(["x-a", "k"]), st.integers(0, 3), max_size=2), st.just({1: "a"}))


def _objects(kind: str):
    fields = list(getattr(specs, kind).CHECKS) + ["unknown"]
    return st.dictionaries(st.sampled_from(fields), ANY, max_size=6)


def _named(kind: str):
    return st.dictionaries(st.sampled_from(["a", "b", "c"]), _objects(kind), max_size=3)


VHOSTS = st.fixed_dictionaries({}, optional={
    "description": ANY, "tags": ANY, "default_queue_type": ANY, "tracing": ANY, "limits": ANY,
    "exchanges": _named("Exchange"), "queues": _named("Queue"), "bindings": st.lists(_objects("Binding"), max_size=3),
    "policies": _named("Policy"), "operator_policies": _named("Policy"), "ignore": ANY,
    "shovels": st.sampled_from([{}, {"s": {}}, None]), "federation_upstreams": st.sampled_from([{}, None]),
})
FILES = st.fixed_dictionaries({}, optional={
    "vhosts": st.dictionaries(st.sampled_from(["shop", "/"]), VHOSTS, max_size=2),
    "users": st.sampled_from([{}, {"u": {}}]), "manage_all_users": ANY, "ignore_users": ANY,
    "global_parameters": ANY, "tests": st.sampled_from([[], None]),
})


@settings(max_examples=400, deadline=None)
@given(FILES)
def test_generated_files_are_read_alike_or_left_to_the_models(data):
    _agree(data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(specs.Queue.CHECKS)), ANY, max_size=4))
def test_generated_queues_are_read_alike_or_left_to_the_models(queue):
    _agree({"vhosts": {"v": {"queues": {"q": queue}}}})


def _valid(name: str, fields: dict) -> dict:
    return {"vhosts": {"v": {name: fields}}}


@pytest.mark.parametrize("data", [
    {"vhosts": {"v": {"queues": {"q": {"message_ttl": "30s", "max_length_bytes": "10MiB", "type": "quorum",
                                       "delivery_limit": -1, "max_age": "7D", "leader_locator": "balanced",
                                       "arguments": {"x-a": [1, {"b": None}]}}}}}},
    {"vhosts": {"v": {"exchanges": {"x": {"type": "topic", "internal": True, "alternate_exchange": None}},
                      "bindings": [{"source": "x", "destination": "x2", "destination_type": "exchange"}],
                      "policies": {"p": {"pattern": "^a", "definition": {"ha-mode": "all"}, "apply_to": "queues"}},
                      "limits": {"max-queues": 3}, "tags": ["a"], "ignore": ["tmp.*"], "shovels": {}}},
     "manage_all_users": False, "global_parameters": {"cluster_name": "c"}, "users": {}, "tests": []},
], ids=["queue fields", "every section"])
def test_plain_files_are_built_without_the_models(data):
    assert _agree(data) is not None


@pytest.mark.parametrize("data", [
    _valid("queues", {"q": {"max_length": True}}),  # strict: a boolean is no integer
    _valid("queues", {"q": {"message_ttl": 1.0}}),  # the models turn it into 1
    _valid("queues", {"q": {"max_age": "7D\n"}}),
    _valid("queues", {"q": {"max_length": 2**63}}),
    _valid("queues", {"q": {"unknown": 1}}),
    _valid("exchanges", {"x": {}}),  # its type is required
    _valid("shovels", {"s": {"source_uri": "amqp://"}}),
    {"users": {"u": {}}},
    {"vhosts": {"v": None}},
], ids=["bool", "float", "newline", "large", "unknown", "required", "shovel", "users", "null vhost"])
def test_what_the_fast_path_is_not_sure_of_is_left_to_the_models(data):
    assert specs.build_file(data) is None
    _agree(data)


def test_a_built_object_reads_like_a_model_and_is_frozen():
    queue = specs.build_file({"vhosts": {"v": {"queues": {"q": {"message_ttl": "1m"}}}}}).vhosts["v"].queues["q"]
    assert queue.message_ttl == 60_000 and queue.durable is True and queue.arguments == {}
    assert queue.model_fields_set == {"message_ttl"}
    assert repr(queue).startswith("Queue(type=None, durable=True")
    with pytest.raises(AttributeError):
        queue.durable = False
    other = specs.build_file({"vhosts": {"v": {"queues": {"q": {"message_ttl": 60_000}}}}}).vhosts["v"].queues["q"]
    assert other == queue and other.arguments is not queue.arguments
    exchange = specs.build_file({"vhosts": {"v": {"exchanges": {"x": {"durable": False, "type": "topic"}}}}})
    assert repr(exchange.vhosts["v"].exchanges["x"]).startswith("Exchange(type='topic', durable=False")
    assert (queue == "Queue(...)") is False and queue != exchange


def test_the_examples_without_references_are_built_without_the_models():
    built = 0
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or "${" in text or data.get("users") or data.get("tests") or any(
                (vhost or {}).get(section) for vhost in (data.get("vhosts") or {}).values()
                for section in ("shovels", "federation_upstreams", "federation_upstream_sets")):
            continue
        assert _agree(data) is not None, path
        built += 1
    assert built >= 2


def test_validating_a_plain_file_does_not_import_pydantic(tmp_path):
    """The point of the fast path: a valid file of the common kinds costs no pydantic import (nor
    one of the broker-side objects, which validate does not need)."""
    file = tmp_path / "topology.yaml"
    file.write_text(yaml.safe_dump({"vhosts": {"shop": {
        "exchanges": {"orders": {"type": "topic"}},
        "queues": {"orders.created": {"message_ttl": "30s", "dead_letter_exchange": "orders"}},
        "bindings": [{"source": "orders", "destination": "orders.created", "routing_key": "created"}],
        "policies": {"ttl": {"pattern": "^orders", "definition": {"expires": 86_400_000}}}}}}), encoding="utf-8")
    check = ("import sys; from topology.cli import main\n"
             "try:\n    main(['validate', sys.argv[1]])\nexcept SystemExit as exit_:\n    code = exit_.code\n"
             "print(code, 'pydantic' in sys.modules, 'topology.kinds' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", check, str(file)], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    # nor the broker-side objects (topology.kinds): a plain file's checks do not need them
    assert done.stdout.split()[-3:] == ["0", "False", "False"], done.stdout + done.stderr
    file.write_text(file.read_text(encoding="utf-8").replace("30s", "30 parsecs"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", check, str(file)], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    assert done.stdout.split()[-3:-1] == ["1", "True"], done.stdout + done.stderr  # the models give the message
    assert "invalid duration '30 parsecs'" in done.stdout + done.stderr
