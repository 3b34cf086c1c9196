"""Unit tests for password hashes, password tokens, and the user part of the file format."""

from __future__ import annotations


import pytest

from tests.conftest import load_problems as problems
from tests.conftest import load_text
from topology.errors import ConfigError
from topology.loader import load
from topology.passwords import MD5, SHA256, SHA512, matches, password_hash, resolve_passwords
from topology.kinds import PASSWORD_CHANGED, PASSWORD_SET, UserState
from topology.state import State
from topology.variables import Variables

# made by RabbitMQ 3.10.8 for the password "secret1" (PUT /api/users with a password, read back)
BROKER_HASH = "Jyz+B4B//F3AIt+gEbdOks3ENO+cc3AvpUhHqlF0QUbUswXm"


def test_a_hash_made_by_the_broker_is_checked_here():
    assert matches("secret1", BROKER_HASH, SHA256)
    assert not matches("secret2", BROKER_HASH, SHA256)
    assert not matches("secret1", BROKER_HASH, SHA512) and not matches("secret1", "not base64!", SHA256)
    assert not matches("secret1", BROKER_HASH, "rabbit_password_hashing_unknown")


@pytest.mark.parametrize("algorithm", [SHA256, SHA512, MD5])
def test_hashes_made_here_check_out_with_a_fresh_salt_each_time(algorithm):
    first, second = password_hash("pässword", algorithm), password_hash("pässword", algorithm)
    assert first != second and matches("pässword", first, algorithm) and matches("pässword", second, algorithm)
    assert password_hash("x", algorithm, salt=b"abcd") == password_hash("x", algorithm, salt=b"abcd")


def states(desired_user: UserState, stored: str | None, algorithm: str | None = SHA256) -> UserState:
    desired, live = State(), State()
    desired.add(desired_user)
    if stored is not None:
        live.add(UserState(user="u", password=PASSWORD_SET if stored else None))
        live.password_hashes["u"] = (stored, algorithm)
    resolve_passwords(desired, live)
    return desired.objects[("user", "", "u")]


def test_password_tokens():
    declared = UserState(user="u", password=PASSWORD_SET, managed_password=True, secret="secret1")
    assert states(declared, BROKER_HASH).password == PASSWORD_SET
    assert states(UserState(user="u", password=PASSWORD_SET, managed_password=True, secret="other"),
                  BROKER_HASH).password == PASSWORD_CHANGED
    assert states(declared, None).password == PASSWORD_SET  # a new user
    hashed = UserState(user="u", password=PASSWORD_SET, managed_password=True, declared_hash=BROKER_HASH)
    assert states(hashed, BROKER_HASH).password == PASSWORD_SET
    other_algorithm = UserState(user="u", password=PASSWORD_SET, managed_password=True, secret="secret1",
                                hashing_algorithm=SHA512)
    assert states(other_algorithm, BROKER_HASH).password == PASSWORD_CHANGED
    unmanaged = UserState(user="u")
    assert states(unmanaged, BROKER_HASH).password == PASSWORD_SET and states(unmanaged, "").password is None


def test_a_password_from_the_environment_names_its_variable(tmp_path):
    from topology.state import desired_state

    topology = load_text(tmp_path, "users:\n  u:\n    password: ${U_PASSWORD}\n", {"U_PASSWORD": "pw"})
    [user] = desired_state(topology).objects.values()
    assert user.password_variable == "U_PASSWORD" and user.secret == "pw" and "pw" not in repr(user)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users:\n  u:\n    password: plain\n", "a literal password in a file"),
        ("users:\n  u:\n    password: ${P_PASSWORD}\n    password_hash: abc\n", "give password or password_hash, not both"),
        ("users:\n  u:\n    password_hash: 'not a hash'\n", "not a RabbitMQ password hash"),
        ("users:\n  u:\n    limits: {max-connections: -1}\n", "max-connections cannot be negative"),
        ("users:\n  u:\n    limits: {max-queues: 1}\n", "max-queues"),
        ("users:\n  u:\n    permissions: {v: {configure: '(', write: '.*', read: '.*'}}\n", "invalid regular expression '('"),
        ("users:\n  u:\n    permissions: {v: {configure: '.*'}}\n", "missing required field 'write'"),
        ("users:\n  u:\n    topic_permissions: {v: {ex: {write: '[', read: '.*'}}}\n", "invalid regular expression '['"),
        ("users:\n  u:\n    tags: ['a,b']\n", "invalid tag 'a,b'"),
    ],
)
def test_bad_users_are_located_errors(tmp_path, text, message):
    found = problems(tmp_path, text, {"P_PASSWORD": "x"})
    assert any(message in p for p in found), found
    assert all(":" in p for p in found)


def test_a_literal_password_may_be_allowed(tmp_path):
    topology = load_text(tmp_path, "users:\n  u:\n    password: plain\n    allow_literal_password: true\n")
    assert topology.users["u"].spec.password == "plain"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vhosts:\n  v:\n    limits: {max-queues: -1}\n", "max-queues cannot be negative"),
        ("vhosts:\n  v:\n    limits: {max-exchanges: 1}\n", "max-exchanges"),
        ("vhosts:\n  v:\n    tracing: 'yes'\n", "tracing"),
        ("global_parameters:\n  p: null\n", "null is not a value the broker accepts"),
        ("global_parameters:\n  cluster_name: 42\n", "cluster_name must be text"),
    ],
)
def test_bad_vhost_settings_and_global_parameters_are_located_errors(tmp_path, text, message):
    found = problems(tmp_path, text)
    assert any(message in p for p in found), found


def test_a_global_parameter_set_in_two_files_names_both(tmp_path):
    (tmp_path / "a.yaml").write_text("global_parameters:\n  cluster_name: one\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("global_parameters:\n  cluster_name: two\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")], Variables(environment={}))
    assert "set twice (also at" in str(info.value.problems[0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a sha512 hash labelled (by default) sha256 would lock the user out
        (f"users:\n  u:\n    password_hash: '{password_hash('x', SHA512)}'\n", "its digest has 64 bytes, not the 32"),
        ("users:\n  u:\n    password: 'abc$${X}'\n", "a literal password in a file"),
        ("users:\n  u:\n    tags: [' monitoring']\n", "spaces around them"),
        ("global_parameters:\n  p: {}\n", "an empty map"),
    ],
)
def test_review_findings_are_located_errors(tmp_path, text, message):
    found = problems(tmp_path, text)
    assert any(message in p for p in found), found


def test_a_password_from_a_values_file_is_refused(tmp_path):
    from topology.variables import load_values

    (tmp_path / "values.yaml").write_text("SVC_PASS: in-git\n", encoding="utf-8")
    (tmp_path / "t.yaml").write_text("users:\n  u:\n    password: ${SVC_PASS}\n", encoding="utf-8")
    variables = Variables(environment={})
    assert load_values([str(tmp_path / "values.yaml")], variables) == []
    with pytest.raises(ConfigError) as info:
        load([str(tmp_path / "t.yaml")], variables)
    assert "comes from SVC_PASS, set in" in str(info.value.problems[0]) and "in-git" not in str(info.value.problems[0])


def test_the_connected_users_refusals_survive_a_saved_plan():
    from topology.diff import diff
    from topology.plan import Plan, load_saved_plan, saved_plan
    from topology.kinds import PermissionState

    desired, live = State(), State()
    desired.add(UserState(user="me", tags=("monitoring",)))
    live.add(UserState(user="me", tags=("administrator",)))
    desired.add(PermissionState(vhost="v", user="me", configure="^$", write="^$", read="^$"))
    live.add(PermissionState(vhost="v", user="me", configure=".*", write=".*", read=".*"))
    desired.vhosts["v"] = live.vhosts["v"] = __import__("topology.state", fromlist=["VhostState"]).VhostState(vhost="v")
    found = diff(desired, live, connected_user="me")
    assert {c.kind: bool(c.hazards) for c in found.changes} == {"user": True, "permission": True}
    from topology.broker.live import BrokerInfo

    plan = Plan(changes=tuple(found.changes), vhosts=("v",), broker=BrokerInfo("http://b:15672", "3.10.8", "c"))
    loaded = load_saved_plan(saved_plan(plan), "p.json")
    with pytest.raises(Exception, match="connected as"):
        loaded.check_allowed()


def test_manage_all_users_is_set_once_and_ignore_users_never_matches_a_declared_user(tmp_path):
    (tmp_path / "a.yaml").write_text("manage_all_users: true\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("manage_all_users: false\nignore_users: ['', 'svc-*']\nusers:\n  svc-a: {}\n",
                                     encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        topology = load([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")], Variables(environment={}))
    assert [p.message for p in info.value.problems] == [f"set twice (also at {tmp_path / 'a.yaml'}:1)"]
    from topology.validate import validate

    topology = load([str(tmp_path / "b.yaml")], Variables(environment={}))
    with pytest.raises(ConfigError) as info:
        validate(topology)
    assert sorted(p.message for p in info.value.problems) == [
        "an ignore pattern cannot be empty",
        "ignore_users has no effect without manage_all_users: true (users the files do not declare are left alone anyway)",
        "is declared but matches the ignore_users pattern 'svc-*'"]
    (tmp_path / "c.yaml").write_text("manage_all_users: true\nignore_users: [' ops-*']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        validate(load([str(tmp_path / "c.yaml")], Variables(environment={})))
    assert [p.message for p in info.value.problems] == [
        "ignore pattern ' ops-*' has spaces at an end: it would match no user name"]


def test_cluster_wide_objects_are_pruned_only_in_the_scope_the_files_own():
    from topology.diff import diff
    from topology.kinds import GlobalParameterState

    live = State()
    for name in ("cluster_name", "internal_cluster_id", "stray"):
        live.add(GlobalParameterState(parameter=name, value="x"))
    live.add(UserState(user="guest", tags=("administrator",)))
    live.add(UserState(user="old"))
    desired = State()
    assert not diff(desired, live, prune=True).changes  # neither section owned: nothing listed or pruned
    assert not diff(desired, live, prune=True).unmanaged
    desired.all_global_parameters, desired.all_users, desired.ignore_users = True, True, ("o*",)
    found = diff(desired, live, prune=True, connected_user="guest")
    assert [(c.kind, c.name) for c in found.changes] == [("global_parameter", "stray")]
    assert {r.name: found.protected.get(r.key) for r in found.unmanaged} == {
        "cluster_name": "the broker always has a cluster name: declare it to change it",
        "internal_cluster_id": "internal to the broker", "guest": "the user this tool is connected as"}


PASSWORDLESS = """
users:
  cert-only:
    tags: [monitoring]
"""


def planned_user(tmp_path, text: str, live_user: UserState | None, stored: str = "",
                 environment: dict[str, str] | None = None):
    """The change the planner makes for user ``cert-only`` of ``text`` against a broker holding
    ``live_user`` (with the ``stored`` hash), and its plan lines."""
    from topology.diff import diff
    from topology.render.text import render_change
    from topology.state import desired_state

    desired = desired_state(load_text(tmp_path, text, environment))
    live = State()
    if live_user is not None:
        live.add(live_user)
        live.password_hashes[live_user.user] = (stored, SHA256)
    resolve_passwords(desired, live)
    changes = [c for c in diff(desired, live, connected_user="guest").changes if c.kind == "user"]
    return changes, [line for change in changes for line in render_change(change)]


def test_a_user_with_no_password_declared_plans_without_one_and_says_so(tmp_path):
    # a new user: created without a password, and the plan says what that means
    changes, lines = planned_user(tmp_path, PASSWORDLESS, None)
    assert [c.action for c in changes] == ["create"] and not changes[0].after.managed_password
    assert "        password: none (none declared: it cannot log in with a password until one is set)" in lines
    # an existing one with a password: nothing to do, whatever its password
    changes, lines = planned_user(tmp_path, PASSWORDLESS, UserState(user="cert-only", tags=("monitoring",),
                                                                    password=PASSWORD_SET), BROKER_HASH)
    assert changes == []
    # its tags change: its password is left as it is, and the plan says so
    changes, lines = planned_user(tmp_path, PASSWORDLESS, UserState(user="cert-only", tags=("management",),
                                                                    password=PASSWORD_SET), BROKER_HASH)
    assert [c.action for c in changes] == ["update"] and "password" not in changes[0].fields
    assert lines[-1] == "        password: left as it is (none declared)"


def test_a_declared_password_is_still_compared_and_never_shown(tmp_path):
    text = "users:\n  cert-only:\n    password: ${CERT_ONLY_PASSWORD}\n    tags: [monitoring]\n"
    live = UserState(user="cert-only", tags=("monitoring",), password=PASSWORD_SET)
    same, _ = planned_user(tmp_path, text, live, BROKER_HASH, {"CERT_ONLY_PASSWORD": "secret1"})
    assert same == []
    changes, lines = planned_user(tmp_path, text, live, BROKER_HASH, {"CERT_ONLY_PASSWORD": "secret2"})
    assert [c.action for c in changes] == ["update"] and list(changes[0].fields) == ["password"]
    assert "        password: set -> changed" in lines and not any("left as it is" in line for line in lines)
    assert not any("secret2" in line for line in lines)
