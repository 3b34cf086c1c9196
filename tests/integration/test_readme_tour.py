"""The README's five-minute tour, run as written against the test broker (in a throw-away vhost):
the file it shows is examples/quickstart/orders.yaml, and each command prints what the README
shows (the broker's address and version lines aside, and where the README shortens with '...')."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tests.unit.test_docs_commands import console_commands

pytestmark = pytest.mark.broker

README = (ROOT / "README.md").read_text(encoding="utf-8")
TOUR = README.split("<!-- --8<-- [start:tour] -->", 1)[1].split("<!-- --8<-- [end:tour] -->", 1)[0]
YAML = re.findall(r"```yaml\n(.*?)```", TOUR, flags=re.S)


def steps() -> list[tuple[list[str], list[str]]]:
    """Each ``$ topology ...`` of the tour with the lines the README shows it printing."""
    return console_commands(TOUR)


def test_the_tour_file_is_the_quickstart_example():
    shown = YAML[0].split("\n", 1)[1]  # after its "# topology/orders.yaml" line
    shipped = (ROOT / "examples" / "quickstart" / "orders.yaml").read_text(encoding="utf-8")
    assert shipped.split("\n", 1)[1] == shown


def test_the_tour_runs_as_the_readme_shows(run, tmp_path, api, vhost, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_tour(lambda *arguments: (lambda r: (r.code, r.out))(run(*arguments)), tmp_path, api, vhost)


def run_tour(command, where, api, vhost: str) -> None:
    """Run the README's tour in ``where`` (the folder ``topology/`` is made there) with ``command``,
    which runs the command line with the given arguments in ``where`` and gives its exit code and
    output; the vhost the tour names becomes ``vhost``."""
    folder = where / "topology"
    folder.mkdir()

    def rename(text: str) -> str:
        return text.replace("\n  orders:\n", f"\n  {vhost}:\n").replace("vhost orders", f"vhost {vhost}") \
            .replace("binding orders/", f"binding {vhost}/")

    orders = folder / "orders.yaml"
    orders.write_text(rename(YAML[0]), encoding="utf-8")  # as the reader writes it, first comment line included
    tour = steps()
    assert [words[:2] for words, _ in tour] == [["topology", "validate"], ["topology", "plan"], ["topology", "apply"],
                                                 ["topology", "plan"], ["topology", "apply"], ["topology", "drift"]]
    for index, (words, shown) in enumerate(tour):
        if index == 3:  # the change the README makes next: the policy block, appended to the file
            orders.write_text(orders.read_text(encoding="utf-8") + YAML[1], encoding="utf-8")
        if index == 5:  # "someone deletes a binding by hand"
            api.delete("bindings", vhost, "e", "orders.dlx", "q", "orders.dead", "~")
        arguments = words[1:] + (["--auto-approve"] if words[1] == "apply" and "--auto-approve" not in words else [])
        code, out = command(*arguments)
        expected_code = 2 if words[1] == "drift" else 0
        assert code == expected_code, (words, out)
        printed = out.splitlines()
        for line in shown:
            if not line.strip() or line.strip() == "..." or line.startswith("Broker: "):
                continue
            assert rename(line) in printed, (words, rename(line), out)
