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
    """Each folder here, but quickstart: the README's tour, which tests/integration/test_readme_tour.py runs."""
    assert {f for combination in EXAMPLES for f in combination} | {"quickstart"} == {
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
