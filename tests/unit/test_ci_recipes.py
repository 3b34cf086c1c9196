"""The CI recipes in ci-recipes/ parse, and every topology command they run exists with those options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from topology.cli import cli

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "ci-recipes").glob("*.y*ml")) + [ROOT / ".pre-commit-hooks.yaml"]
COMMAND = re.compile(r"\btopology (validate|plan|apply|drift)\b([^\n;|>&]*)")


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def commands(document) -> list[list[str]]:
    found = []
    for text in strings(document):
        for match in COMMAND.finditer(text.replace("\\\n", " ")):  # shell line continuations
            found.append([match.group(1), *shlex.split(match.group(2))])
    return found


def test_there_are_recipes_for_github_gitlab_and_pre_commit():
    names = {p.name for p in RECIPES}
    assert {"github-actions.yml", "gitlab-ci.yml", "pre-commit-config.yaml", ".pre-commit-hooks.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_topology_command_in_a_recipe_exists_with_its_options(recipe):
    document = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    found = commands(document)
    if recipe.name.startswith((".pre-commit", "pre-commit")):
        hooks = document if isinstance(document, list) else document["repos"][0]["hooks"]
        found = [hook["entry"].split()[1:] + hook.get("args", []) for hook in hooks]
    assert found, f"no topology command in {recipe.name}"
    for name, *arguments in found:
        command = cli.commands[name]
        known = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for argument in arguments:
            if argument.startswith("--"):
                assert argument.split("=")[0] in known, f"{recipe.name}: topology {name} has no option {argument}"


def test_the_github_workflow_plans_on_pull_requests_applies_saved_plans_and_checks_drift_on_a_schedule():
    workflow = yaml.safe_load((ROOT / "ci-recipes" / "github-actions.yml").read_text(encoding="utf-8"))
    triggers = workflow[True]  # YAML 1.1 reads the key "on" as a boolean
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    steps = {job: " ".join(strings(spec)) for job, spec in workflow["jobs"].items()}
    assert "--format markdown" in steps["plan"] and "gh pr comment" in steps["plan"]
    assert "--plan plans/{target}.json" in steps["apply"].replace('"', "") and workflow["jobs"]["apply"]["environment"]
    assert "drift" in steps["drift"] and "--format junit" in steps["drift"]
