"""Every example, on the test broker: validated, applied, planned to no change, and its routing
tests run offline and on the broker. Behaviour that differs by version is asserted per version."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from topology.rules.versions import has_classic_mirroring

pytestmark = pytest.mark.broker

EXAMPLES = [("shop",), ("shop", "shop-mirrored")]
"""The example folders, alone or in the combinations their README gives."""


def copy_examples(tmp_path, folders: tuple[str, ...], vhost: str) -> list[str]:
    """The folders' files, copied with the vhost ``shop`` renamed to the test's throw-away vhost."""
    paths = []
    for folder in folders:
        target = tmp_path / folder
        target.mkdir()
        for source in sorted((ROOT / "examples" / folder).glob("*.y*ml")):
            text = source.read_text(encoding="utf-8").replace("\n  shop:\n", f"\n  {vhost}:\n")
            (target / source.name).write_text(text.replace("vhost: shop\n", f"vhost: {vhost}\n"), encoding="utf-8")
        paths.append(str(target))
    return paths


def test_every_example_folder_is_tested():
    """Each folder is the shop's, a pattern's (below), or quickstart: the README's tour, which
    tests/integration/test_readme_tour.py runs."""
    assert {f for combination in EXAMPLES for f in combination} | set(PATTERNS) | {"quickstart"} == {
        p.name for p in (ROOT / "examples").iterdir() if p.is_dir()}


@pytest.mark.parametrize("folders", EXAMPLES, ids=lambda f: "+".join(f))
def test_an_example_applies_converges_and_routes_as_its_tests_say(run, tmp_path, api, vhost, broker_version, folders):
    paths = copy_examples(tmp_path, folders, vhost)
    assert run("validate", *paths).code == 0
    offline = run("test", *paths)
    assert offline.code == 0 and "0 failed" in offline.out, offline.out
    if "shop-mirrored" in folders and not has_classic_mirroring(broker_version):
        # the version rule: classic mirroring is refused before anything is written
        refused = run("apply", *paths, "--auto-approve")
        assert refused.code == 1 and "classic queue mirroring (ha-* policy keys)" in refused.err
        assert vhost not in {v["name"] for v in api.get("vhosts")}
        return
    applied = run("apply", *paths, "--auto-approve")
    assert applied.code == 0, applied.err
    assert api.get("vhosts", vhost)["default_queue_type"] == "quorum"
    assert api.queue(vhost, "audit.pdf")["arguments"]["x-queue-type"] == "quorum"  # from the vhost default
    assert run("plan", *paths, "--detailed-exitcode").code == 0
    live = run("test", *paths, "--live")
    assert live.code == 0 and "4 passed, 0 failed" in live.out, live.out + live.err
    if "shop-mirrored" in folders:
        assert api.get("policies", vhost, "ha-two")["definition"]["ha-mode"] == "exactly"


PATTERNS = {
    "retry-ladder": {"vhosts": ["jobs"]},
    "quorum-ha": {"vhosts": ["payments"]},
    "dead-letter-per-service": {"vhosts": ["services"]},
    "work-queues": {"vhosts": ["tasks"]},
    "shovel-between-vhosts": {"vhosts": ["legacy", "orders"]},
    "service-users": {"vhosts": ["shop-data"], "users": ["orders-svc", "reporting-svc"]},
}
"""The reliability-pattern examples: each folder's vhosts (and users), renamed in the copy the test
applies to throw-away names."""


@pytest.fixture
def names(api):
    """Throw-away vhost and user names for one example (deleted after the test)."""
    import uuid

    made: dict[str, str] = {}

    def name(original: str) -> str:
        made.setdefault(original, f"topology-test-{uuid.uuid4().hex[:10]}")
        return made[original]

    yield name
    for original, name_ in made.items():
        api.delete("vhosts", name_)
        api.delete("users", name_)


@pytest.mark.parametrize("folder", sorted(PATTERNS))
def test_a_pattern_example_applies_converges_and_routes_as_its_tests_say(run, tmp_path, api, names, folder,
                                                                         broker_version, monkeypatch):
    import re

    renamed = {original: names(original) for kind in ("vhosts", "users") for original in PATTERNS[folder].get(kind, [])}
    source = next((ROOT / "examples" / folder).glob("*.yaml"))
    text = source.read_text(encoding="utf-8")
    for original, name in renamed.items():  # a vhost's or user's key, a permission's vhost, vhost: in tests, a URI's path
        text = re.sub(rf"(?m)^  {re.escape(original)}:", f"  {name}:", text)
        text = re.sub(rf"(?m)^(\s+){re.escape(original)}: \{{configure", rf"\g<1>{name}: {{configure", text)
        text = text.replace(f"vhost: {original}\n", f"vhost: {name}\n").replace(f"amqp:///{original}\"", f"amqp:///{name}\"")
    target = tmp_path / folder
    target.mkdir()
    (target / source.name).write_text(text, encoding="utf-8")
    for variable in set(re.findall(r"\$\{([A-Z_]+)\}", text)):
        monkeypatch.setenv(variable, f"pw-{variable.lower()}-0123456789")

    assert run("validate", str(target)).code == 0
    offline = run("test", str(target))
    assert offline.code == 0 and " 0 failed" in offline.out, offline.out
    lint = run("lint", str(target), "--strict", "--broker-version", ".".join(map(str, broker_version[:2])))
    assert lint.code == 0, lint.out
    applied = run("apply", str(target), "--auto-approve")
    assert applied.code == 0, applied.err
    assert run("plan", str(target), "--detailed-exitcode").code == 0
    live = run("test", str(target), "--live")
    assert live.code == 0 and " 0 failed" in live.out, live.out + live.err
