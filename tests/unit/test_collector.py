"""The garbage collector paused while the files load and a plan is made (topology/collector.py)."""

from __future__ import annotations

import gc

import pytest

from topology import collector
from topology.cli import main


@pytest.fixture(autouse=True)
def thawed_after():
    yield
    gc.unfreeze()
    gc.enable()


def test_a_paused_block_runs_without_the_collector_and_what_it_built_is_frozen():
    gc.unfreeze()
    with collector.paused():
        assert not gc.isenabled()
        built = [{"queue": i} for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)
    collector.thawed()
    assert gc.get_freeze_count() == 0


def test_a_block_inside_a_paused_one_leaves_the_collector_stopped_until_the_outer_one_ends():
    with collector.paused():
        with collector.paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_block_that_raises_still_starts_the_collector_again():
    with pytest.raises(ValueError), collector.paused():
        raise ValueError("a problem in the files")
    assert gc.isenabled()


def test_a_command_leaves_nothing_frozen_and_the_collector_as_it_found_it(tmp_path, capsys):
    file = tmp_path / "t.yaml"
    file.write_text("vhosts:\n  shop:\n    queues:\n      orders: {}\n", encoding="utf-8")
    gc.unfreeze()
    thresholds = gc.get_threshold()
    with pytest.raises(SystemExit) as exited:
        main(["validate", str(file)])
    assert exited.value.code == 0 and "Valid" in capsys.readouterr().out
    assert gc.isenabled() and gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
