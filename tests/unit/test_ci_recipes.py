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


@pytest.mark.parametrize("recipe, schema", [("github-actions.yml", "vendor.github-workflows"),
                                            ("gitlab-ci.yml", "vendor.gitlab-ci")])
def test_the_recipes_pass_their_platforms_workflow_schemas(recipe, schema):
    """check-jsonschema's copies of GitHub's and GitLab's own schemas (no network needed)."""
    import subprocess
    import sys

    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(checker), "--builtin-schema", schema, str(ROOT / "ci-recipes" / recipe)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_recipes_install_this_release_of_the_real_distribution():
    """Every install line names the distribution (the Index's `topology` is another project), pinned
    to this release."""
    import tomllib

    from topology import __version__

    name = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    assert name == "rabbitmq-topology"
    for recipe in ("github-actions.yml", "gitlab-ci.yml"):
        text = (ROOT / "ci-recipes" / recipe).read_text(encoding="utf-8")
        installs = re.findall(r"pip install ([^\n]+)", text)
        assert installs and all(line.strip('"').startswith(f"{name}==") for line in installs), (recipe, installs)
        assert re.search(rf'TOPOLOGY_VERSION: "{re.escape(__version__)}"', text), recipe
