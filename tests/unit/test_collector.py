"""The garbage collector paused while the files load and a plan is made (topology/collector.py)."""

from __future__ import annotations

import gc
import threading

import pytest

from topology import collector
from topology.cli import main


@pytest.fixture(autouse=True)
def thawed_after():
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def tracked(count: int) -> list[list[int]]:
    """Objects the collector tracks (a list holding a list; a map of numbers alone is not)."""
    return [[i] for i in range(count)]


def test_in_a_command_a_paused_block_runs_without_the_collector_and_what_it_built_is_frozen():
    with collector.command():
        with collector.paused():
            assert not gc.isenabled()
            built = tracked(1000)
        assert gc.isenabled()
        assert all(gc.is_tracked(item) for item in built) and gc.get_freeze_count() >= len(built)
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_outside_a_command_nothing_is_paused_or_frozen():
    """The engine called as a library (and the tests that call it) leaves the collector alone."""
    with collector.paused():
        assert gc.isenabled()
        tracked(1000)
    assert gc.get_freeze_count() == 0


def test_a_block_paused_in_another_thread_than_the_main_one_changes_nothing():
    """Targets run side by side in threads: one's freeze would take another's garbage."""
    seen = []

    def target() -> None:
        with collector.paused():
            seen.append(gc.isenabled())
            tracked(1000)

    with collector.command():
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert seen == [True] and gc.get_freeze_count() == 0


def test_a_block_inside_a_paused_one_leaves_the_collector_stopped_until_the_outer_one_ends():
    with collector.command():
        with collector.paused():
            with collector.paused():
                pass
            assert not gc.isenabled()
        assert gc.isenabled()


def test_a_block_that_raises_still_starts_the_collector_again():
    with collector.command():
        with pytest.raises(ValueError), collector.paused():
            raise ValueError("a problem in the files")
        assert gc.isenabled()


def test_a_command_ended_inside_a_paused_block_leaves_the_collector_as_it_found_it():
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        with pytest.raises(KeyboardInterrupt), collector.command():
            gc.disable()  # as if interrupted between the two steps of paused()
            raise KeyboardInterrupt
        assert gc.isenabled() is enabled and gc.get_freeze_count() == 0


def test_a_command_leaves_nothing_frozen_and_the_collector_as_it_found_it(tmp_path, capsys):
    file = tmp_path / "t.yaml"
    file.write_text("vhosts:\n  shop:\n    queues:\n      orders: {}\n", encoding="utf-8")
    thresholds = gc.get_threshold()
    frozen = []
    real_freeze = gc.freeze

    def freeze() -> None:
        frozen.append(True)
        real_freeze()

    gc.freeze = freeze  # type: ignore[assignment]
    try:
        with pytest.raises(SystemExit) as exited:
            main(["validate", str(file)])
    finally:
        gc.freeze = real_freeze  # type: ignore[assignment]
    assert exited.value.code == 0 and "Valid" in capsys.readouterr().out
    assert frozen  # the load was paused
    assert gc.isenabled() and gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
