"""Unit tests for the project file (topology.toml) and how targets become runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from topology import redact
from topology.project import ProjectError, find_project, load_project
from topology.targets import Connection, Selection, resolve_jobs

PROJECT = """
secrets = ["HOOK_KEY"]

[defaults]
files = ["topology/"]
values = ["values/common.yaml"]
password_env = "RABBIT_PASSWORD"

[targets.dev]
url = "http://rabbit-dev:15672"
user = "deployer"
values = ["values/common.yaml", "values/dev.yaml"]

[targets.prod]
url = "https://rabbit-prod:15671"
user_env = "RABBIT_PROD_USER"
password_env = "RABBIT_PROD_PASSWORD"
amqp_url = "amqps://rabbit-prod:5671/ops"
timeout = 5
tls = {ca = "certs/ca.pem", cert = "certs/client.pem", key = "certs/client.key"}
"""


def project_file(tmp_path: Path, text: str = PROJECT) -> str:
    path = tmp_path / "topology.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def test_targets_take_the_defaults_and_resolve_paths_next_to_the_file(tmp_path):
    project = load_project(project_file(tmp_path))
    dev, prod = project.target("dev"), project.target("prod")
    assert dev.files == (str(tmp_path / "topology"),) and dev.values[-1] == str(tmp_path / "values/dev.yaml")
    assert dev.password_env == "RABBIT_PASSWORD" and dev.user == "deployer" and dev.tls.verify
    assert prod.values == (str(tmp_path / "values/common.yaml"),) and prod.timeout == 5
    assert prod.tls.ca == str(tmp_path / "certs/ca.pem") and prod.tls.key == str(tmp_path / "certs/client.key")
    assert project.secrets == {"HOOK_KEY"}


def test_credentials_come_from_the_named_environment_variables(tmp_path):
    prod = load_project(project_file(tmp_path)).target("prod")
    assert prod.credentials({"RABBIT_PROD_USER": "ops", "RABBIT_PROD_PASSWORD": "pw"}) == ("ops", "pw")
    with pytest.raises(ProjectError, match="RABBIT_PROD_PASSWORD \\(password_env\\) is not set"):
        prod.credentials({"RABBIT_PROD_USER": "ops"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[targets.a]\nurl = "http://h:15672"\npassword = "hunter2"\n', "a password is never written in the project file"),
        ('[targets.a]\nurl = "http://u:hunter2@h:15672"\n', "must not hold credentials"),
        ('[targets.a]\nurl = "http://h:15672"\ncolour = "blue"\n', "targets.a.colour: unknown key"),
        ('[targets.a]\nuser = "x"\n', "targets.a.url: missing"),
        ('[targets.a]\nurl = "http://h"\npassword_env = "not a name"\n', "is not an environment variable name"),
        ('[targets.a]\nurl = "http://h"\nuser = "x"\nuser_env = "X"\n', "give user or user_env, not both"),
        ('[targets.a]\nurl = "http://h"\ntls = {key = "k.pem"}\n', "a client key needs its certificate"),
        ('targets = [\n', "invalid TOML"),
    ],
)
def test_bad_project_files_are_one_clear_line(tmp_path, text, message):
    with pytest.raises(ProjectError) as info:
        load_project(project_file(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert "hunter2" not in str(info.value)


def test_an_unknown_target_lists_the_known_ones(tmp_path):
    with pytest.raises(ProjectError, match="no target 'qa' .*targets: dev, prod"):
        load_project(project_file(tmp_path)).target("qa")


def test_the_project_file_is_found_here_or_above(tmp_path):
    path = project_file(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_project(str(tmp_path / "a" / "b")) == str(Path(path).resolve())


def test_jobs_from_targets(tmp_path, monkeypatch):
    redact.forget_all()
    path = project_file(tmp_path)
    monkeypatch.setenv("RABBIT_PASSWORD", "dev-secret")
    monkeypatch.setenv("RABBIT_PROD_USER", "ops")
    monkeypatch.setenv("RABBIT_PROD_PASSWORD", "prod-secret")
    connection = Connection("http://127.0.0.1:15672", "guest", "guest", 30.0, insecure=False)
    with pytest.raises(ProjectError, match="targets.prod.tls.ca: no such file"):
        resolve_jobs(Selection(project=path, target="prod"), (), (), connection)
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / "certs" / name).write_text("", encoding="utf-8")
    jobs = resolve_jobs(Selection(project=path, all_targets=True), (), ("extra.yaml",), connection)
    dev, prod = jobs
    assert (dev.target, dev.user, dev.password, dev.timeout) == ("dev", "deployer", "dev-secret", 30.0)
    assert dev.values[-1] == "extra.yaml"  # the command line's values come after the target's
    assert (prod.user, prod.password, prod.amqp_url, prod.timeout) == ("ops", "prod-secret", "amqps://rabbit-prod:5671/ops", 5)
    assert redact.redact("dev-secret prod-secret") == "*** ***"
    [only] = resolve_jobs(Selection(project=path, target="dev"), ("mine.yaml",), (), connection)
    assert only.paths == ("mine.yaml",)  # PATHS win over the target's files
    [insecure] = resolve_jobs(Selection(project=path, target="prod"), (), (), Connection("u", "g", "g", 1.0, insecure=True))
    assert insecure.insecure and insecure.tls.ca  # --insecure turns verification off, keeps the client certificate
    redact.forget_all()


def test_selection_errors(tmp_path, monkeypatch):
    connection = Connection("http://127.0.0.1:15672", "guest", "guest", 30.0)
    with pytest.raises(Exception, match="give the topology files"):
        resolve_jobs(Selection(), (), (), connection)
    with pytest.raises(Exception, match="not both"):
        resolve_jobs(Selection(project="topology.toml", target="dev", all_targets=True), (), (), connection)
    with pytest.raises(Exception, match="goes with --all-targets"):
        resolve_jobs(Selection(continue_on_error=True), ("x",), (), connection)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert find_project() is None
    with pytest.raises(ProjectError, match="no topology.toml in this directory or above it"):
        resolve_jobs(Selection(target="dev"), (), (), connection)


def test_the_readme_example_project_file_loads(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "environments.md").read_text(encoding="utf-8")
    example = readme.split("## Targets (`topology.toml`)", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    project = load_project(project_file(tmp_path, example))
    assert set(project.targets) == {"dev", "prod"}
    assert project.target("dev").user == "deployer" and project.target("prod").user_env == "RABBIT_PROD_USER"
    assert project.target("prod").user is None  # the target's user_env replaces the default user


def test_a_target_that_cannot_run_fails_alone_with_all_targets(tmp_path, monkeypatch):
    path = project_file(tmp_path)
    monkeypatch.delenv("RABBIT_PASSWORD", raising=False)
    monkeypatch.setenv("RABBIT_PROD_USER", "ops")
    monkeypatch.setenv("RABBIT_PROD_PASSWORD", "prod-secret")
    connection = Connection("http://127.0.0.1:15672", "guest", "guest", 30.0)
    dev, prod = resolve_jobs(Selection(project=path, all_targets=True), (), (), connection)
    assert "RABBIT_PASSWORD (password_env) is not set" in dev.problem
    assert "targets.prod.tls.ca: no such file" in prod.problem
    with pytest.raises(ProjectError, match="RABBIT_PASSWORD"):
        resolve_jobs(Selection(project=path, target="dev"), (), (), connection)
    # validate reads no credential
    [job] = resolve_jobs(Selection(project=path, target="dev"), (), (), None, connects=False)
    assert job.problem is None
    redact.forget_all()


def test_target_names_must_be_safe_in_file_names(tmp_path):
    with pytest.raises(ProjectError, match="a target name is letters, digits"):
        load_project(project_file(tmp_path, '[targets."../x"]\nurl = "http://h"\n'))


def test_urls_on_the_command_line_do_not_go_with_targets(run, tmp_path, monkeypatch):
    project_file(tmp_path, '[targets.dev]\nurl = "http://127.0.0.1:1"\namqp_url = "amqp://127.0.0.1:1/"\nfiles = ["t.yaml"]\n')
    (tmp_path / "t.yaml").write_text("vhosts: {v: {}}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    refused = run("plan", "--target", "dev", "--url", "http://127.0.0.1:2")
    assert refused.code == 1 and "--url does not go with --target" in refused.err
    refused = run("apply", "--target", "dev", "--amqp-url", "amqp://127.0.0.1:2/", "--auto-approve")
    assert refused.code == 1 and "--amqp-url does not go with --target" in refused.err
    monkeypatch.setenv("TOPOLOGY_AMQP_URL", "amqp://127.0.0.1:2/")
    warned = run("apply", "--target", "dev", "--auto-approve")
    assert "warning: TOPOLOGY_AMQP_URL is ignored with --target" in warned.err
    assert "cannot connect to AMQP at amqp://127.0.0.1:1" in warned.err  # the target's own AMQP URL


def test_the_project_files_secrets_count_without_targets_too(run, tmp_path, monkeypatch):
    project_file(tmp_path, 'secrets = ["ORDERS_SVC_PASS"]\n[targets.dev]\nurl = "http://h"\n')
    (tmp_path / "t.yaml").write_text("vhosts:\n  v:\n    queues:\n      q: {max_length: '${ORDERS_SVC_PASS}'}\n",
                                     encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORDERS_SVC_PASS", "hunter2")
    result = run("validate", "t.yaml")
    assert result.code == 1 and "hunter2" not in result.err and "***" in result.err


def test_validate_all_targets_needs_no_credential_nor_secret(run, tmp_path, monkeypatch):
    project_file(tmp_path, '[defaults]\nfiles = ["t.yaml"]\npassword_env = "UNSET_PASSWORD"\n'
                           '[targets.dev]\nurl = "http://h"\n[targets.prod]\nurl = "http://h2"\n')
    (tmp_path / "t.yaml").write_text("vhosts:\n  v:\n    queues:\n      q: {arguments: {x-note: '${NOTE_TOKEN}'}}\n",
                                     encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNSET_PASSWORD", raising=False)
    monkeypatch.delenv("NOTE_TOKEN", raising=False)
    result = run("validate", "--all-targets")
    assert result.code == 0, result.err
    assert "  dev: valid" in result.out and "  prod: valid" in result.out


def test_a_project_file_without_targets_is_refused(tmp_path):
    with pytest.raises(ProjectError, match="names no target"):
        load_project(project_file(tmp_path, "[targets]\n"))


def test_an_unrelated_topology_toml_above_does_not_break_plain_commands(run, tmp_path, monkeypatch):
    (tmp_path / "topology.toml").write_text('[tool.other]\nname = "not ours"\n', encoding="utf-8")
    (tmp_path / "t.yaml").write_text("vhosts: {v: {}}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run("validate", "t.yaml").code == 0
    assert run("validate", "t.yaml", "--project", "topology.toml").code == 1  # given explicitly: it must be valid


def test_target_passwords_are_masked_but_never_written_into_saved_plans_as_variables(tmp_path, monkeypatch):
    from topology.plan import Plan, saved_plan
    from topology.kinds import QueueState
    from topology.diff import Change

    redact.forget_all()
    path = project_file(tmp_path, '[targets.dev]\nurl = "http://h"\npassword_env = "DEV_PASSWORD"\n')
    monkeypatch.setenv("DEV_PASSWORD", "guest")
    resolve_jobs(Selection(project=path, target="dev"), ("x.yaml",), (), Connection("http://h", "u", "p", 1.0))
    assert redact.redact("password guest") == "password ***"
    queue = QueueState(vhost="v", queue="guest.events", type="classic", arguments={})
    document = saved_plan(Plan(changes=(Change("create", None, queue, {}, "new"),), vhosts=("v",)))
    assert document["changes"][0]["name"] == "guest.events" and document["secrets"] == []
    redact.forget_all()


def test_a_targets_broker_version_is_what_the_offline_commands_check_against(tmp_path, run, monkeypatch):
    (tmp_path / "t.yaml").write_text(
        "vhosts:\n  v:\n    queues:\n      q: {type: quorum, dead_letter_exchange: dlx}\n      dead: {}\n"
        "    exchanges:\n      dlx: {type: fanout}\n    bindings:\n      - {source: dlx, destination: dead}\n"
        "    policies:\n      ha: {pattern: '^z', definition: {ha-mode: all}}\n", encoding="utf-8")
    project_file(tmp_path, '[defaults]\nfiles = ["t.yaml"]\nbroker_version = "3.13"\n'
                           '[targets.old]\nurl = "http://h:15672"\n'
                           '[targets.new]\nurl = "http://h:15672"\nbroker_version = "4.x"\n')
    monkeypatch.chdir(tmp_path)
    assert load_project("topology.toml").target("new").broker_version == (4, 0, 0)
    assert load_project("topology.toml").target("old").broker_version == (3, 13, 0)
    assert run("validate", "--target", "old").code == 0
    refused = run("validate", "--target", "new")
    assert refused.code == 1 and "not supported from RabbitMQ 4.0 on" in refused.err
    assert "; checked against 4.0 (target new)" in refused.err
    assert run("validate", "--target", "new", "--broker-version", "3.13").code == 0  # the option wins
    # route and test: the target's version, else the oldest supported, said on stderr
    routed = run("route", "--target", "new", "--vhost", "v", "--exchange", "", "--routing-key", "q",
                 "--dead-letter", "delivery_limit")
    assert routed.code == 0 and "dead" in routed.out and "note:" not in routed.err  # 4.0: a limit of 20 by default
    plain = run("route", "t.yaml", "--vhost", "v", "--exchange", "", "--routing-key", "q", "--dead-letter", "delivery_limit")
    assert plain.code == 0 and "note: rules of RabbitMQ 3.10.8, the oldest supported version" in plain.err
    assert "dead" not in plain.out.split("\n", 1)[1]  # 3.10: no limit, so no dead-lettering for it
    bad = project_file(tmp_path, '[targets.x]\nurl = "http://h:15672"\nbroker_version = "newest"\n')
    with pytest.raises(ProjectError, match="a RabbitMQ version such as 4, 4.0, 4.x or 3.13.7"):
        load_project(bad)


def test_a_targets_files_are_named_relative_to_the_project_file_wherever_it_runs(tmp_path, run, monkeypatch):
    """Problems, warnings and origins name a target's files relative to the project file's folder
    (as they sit in the repository), not by absolute path, from any working directory."""
    project = tmp_path / "repo"
    (project / "topology").mkdir(parents=True)
    (project / "values").mkdir()
    project_file(project, """
        [targets.dev]
        url = "http://127.0.0.1:15672"
        files = ["topology/"]
        values = ["values/dev.yaml"]
        """)
    (project / "values" / "dev.yaml").write_text("TTL: 1000\n", encoding="utf-8")
    (project / "topology" / "shop.yaml").write_text(
        "vhosts:\n  shop:\n    queues:\n      q: {message_ttl: '${TTL}', dead_letter_exchange: nowhere}\n"
        "      r: {max_lenght: 5}\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    result = run("validate", "--project", str(project / "topology.toml"), "--target", "dev")
    assert result.code == 1
    lines = [line for line in result.err.splitlines() if "shop.yaml" in line]
    assert lines and all(line.removeprefix("warning: ").startswith("topology/shop.yaml:") for line in lines), lines
    assert str(tmp_path) not in result.err
    (project / "values" / "dev.yaml").write_text("TTL: [\n", encoding="utf-8")
    broken = run("validate", "--project", str(project / "topology.toml"), "--target", "dev")
    assert broken.code == 1 and broken.err.startswith("values/dev.yaml:"), broken.err
    # without a target, files are named as given
    given = run("validate", str(project / "topology" / "shop.yaml"))
    assert str(project / "topology" / "shop.yaml") in given.err


def test_a_lint_ignore_comment_works_when_a_targets_files_are_named_relative_to_the_project(tmp_path, run,
                                                                                              monkeypatch):
    project = tmp_path / "repo"
    (project / "topology").mkdir(parents=True)
    project_file(project, """
        [targets.dev]
        url = "http://127.0.0.1:15672"
        files = ["topology/"]
        """)
    shop = project / "topology" / "shop.yaml"
    shop.write_text("vhosts:\n  shop:\n    queues:\n      q: {dead_letter_exchange: nowhere}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    found = run("lint", "--project", str(project / "topology.toml"), "--target", "dev")
    assert found.code == 2 and "topology/shop.yaml:4: error TOP001" in found.out, found.out
    shop.write_text("vhosts:\n  shop:\n    queues:\n      q: {dead_letter_exchange: nowhere}  # lint: ignore TOP001\n",
                    encoding="utf-8")
    assert "TOP001" not in run("lint", "--project", str(project / "topology.toml"), "--target", "dev").out
