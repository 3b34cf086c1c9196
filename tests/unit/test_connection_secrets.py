"""The management password is masked in every output, except when it is its user's own name: then
it is printed as that name anyway, and masking it hid the user (guest/guest) and every object named
alike."""

from __future__ import annotations

import json


def _definitions(tmp_path, vhost: str):
    source = tmp_path / "definitions.json"
    source.write_text(json.dumps({"rabbit_version": "3.10.8", "vhosts": [{"name": vhost}], "queues": [
        {"name": "q", "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}}]}), encoding="utf-8")
    return str(source)


def test_a_password_equal_to_its_user_name_does_not_mask_that_name(run, tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOLOGY_USER", "ops")
    monkeypatch.setenv("TOPOLOGY_PASSWORD", "ops")
    result = run("export", "--from-definitions", _definitions(tmp_path, "ops"), "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert "ops.yaml" in result.out and "***" not in result.out


def test_any_other_password_in_a_name_still_stops_the_export(run, tmp_path, monkeypatch):
    monkeypatch.setenv("TOPOLOGY_USER", "admin")
    monkeypatch.setenv("TOPOLOGY_PASSWORD", "ops")
    result = run("export", "--from-definitions", _definitions(tmp_path, "ops"), "--out", str(tmp_path / "out"))
    assert result.code == 1 and "holds a secret" in result.err
    assert "ops" not in result.out + result.err and not (tmp_path / "out").exists()
