"""docker-compose.yml and the Dockerfile agree with the code they deploy.

No Docker engine is needed: the compose file is parsed with PyYAML, every RAGLINE_* variable
is checked against ragline.settings.Settings and every service command is resolved against
the real `ragline` CLI (the click group behind the typer app). When the `docker-compose`
executable is on PATH, `docker-compose config -q` validates the file as well.

The checks are functions that take the parsed compose dict and return a list of problems,
so the tests can also feed them deliberately broken copies and expect the problems reported.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from cli.main import app
from ragline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"

EXPECTED_SERVICES = {"redis", "postgres", "qdrant", "api", "worker", "indexer"}
RAGLINE_SERVICES = ("migrate", "api", "worker", "indexer")
ENV_PREFIX = "RAGLINE_"


# --- checks: each takes the parsed compose dict and returns a list of problems -----------


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


def service_environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's `environment`, which compose allows as a mapping or a KEY=VALUE list."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        result[key] = value if sep else None
    return result


def missing_services(compose: dict[str, Any]) -> list[str]:
    services = compose.get("services") or {}
    return [f"missing service {name!r}" for name in sorted(EXPECTED_SERVICES - set(services))]


def settings_problems(compose: dict[str, Any]) -> list[str]:
    """Every RAGLINE_* variable set on any service must be a field of Settings."""
    fields = set(Settings.model_fields)
    problems = []
    for name, service in (compose.get("services") or {}).items():
        for key in service_environment(service or {}):
            if not key.startswith(ENV_PREFIX):
                continue
            field = key.removeprefix(ENV_PREFIX).lower()
            if field not in fields:
                problems.append(f"service {name!r}: {key} is not a Settings field ({field!r})")
    return problems


def is_group(command: Any) -> bool:
    return hasattr(command, "resolve_command") and hasattr(command, "commands")


def cli_group() -> Any:
    # typer >= 0.2x vendors click (typer._click), so compare by behaviour, not by class.
    group = typer.main.get_command(app)
    assert is_group(group), f"the ragline CLI is not a command group: {group!r}"
    return group


def _usage_message(error: Exception) -> str:
    """click's UsageError (from whichever click typer uses); anything else is a real bug."""
    format_message = getattr(error, "format_message", None)
    if format_message is None:
        raise error
    return str(format_message())


def _option_names(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def command_problems(args: list[str], group: Any = None) -> list[str]:
    """Resolve `ragline ARGS` through the real CLI; report unknown commands and options."""
    command = group or cli_group()
    path = ["ragline"]
    rest = [str(a) for a in args]
    while is_group(command):
        where = " ".join(path)
        if not rest:
            return [f"`{where}` needs a subcommand (one of {sorted(command.commands)})"]
        if rest[0].startswith("-"):
            return [f"`{where}`: expected a subcommand, got option {rest[0]!r}"]
        token = rest[0]
        ctx = command.context_class(command, info_name=path[-1], resilient_parsing=True)
        try:
            name, sub, rest = command.resolve_command(ctx, rest)
        except Exception as error:
            _usage_message(error)
            name, sub = None, None
        if sub is None or name is None:
            return [f"`{where}` has no subcommand {token!r} (one of {sorted(command.commands)})"]
        command = sub
        path.append(name)

    where = " ".join(path)
    problems = []
    # Under resilient parsing click silently drops unknown options, so check them by name.
    known = _option_names(command)
    for token in rest:
        if token == "--":
            break
        option = token.split("=", 1)[0]
        if option.startswith("-") and option not in known:
            problems.append(f"`{where}` has no option {option!r} (known: {sorted(known)})")
    try:
        ctx = command.make_context(path[-1], list(rest), resilient_parsing=True)
    except Exception as error:
        return [*problems, f"`{where}`: {_usage_message(error)}"]
    if ctx.args:
        problems.append(f"`{where}`: unexpected extra arguments {ctx.args}")
    for param in command.params:
        if param.required and ctx.params.get(param.name or "") is None:
            problems.append(f"`{where}`: missing required {param.name.upper()}")
    return problems


def commands_problems(compose: dict[str, Any]) -> list[str]:
    services = compose.get("services") or {}
    group = cli_group()
    problems = []
    for name in RAGLINE_SERVICES:
        service = services.get(name) or {}
        args = service.get("command")
        if isinstance(args, str):
            problems.append(f"service {name!r}: command must be a list, got {args!r}")
            continue
        if not args:
            problems.append(f"service {name!r}: no command")
            continue
        problems += [f"service {name!r}: {p}" for p in command_problems(args, group)]
    return problems


def build_problems(compose: dict[str, Any], repo: Path = REPO) -> list[str]:
    """api, worker and indexer build from the repository's Dockerfile."""
    services = compose.get("services") or {}
    problems = []
    for name in RAGLINE_SERVICES:
        build = (services.get(name) or {}).get("build")
        if build is None:
            problems.append(f"service {name!r} has no build")
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = (repo / build.get("context", ".")).resolve()
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        if context != repo.resolve() or dockerfile != (repo / "Dockerfile").resolve():
            problems.append(f"service {name!r} does not build from {repo / 'Dockerfile'}")
    return problems


def dependency_problems(compose: dict[str, Any]) -> list[str]:
    """`condition: service_healthy` only makes sense on services that have a healthcheck."""
    services = compose.get("services") or {}
    problems = []
    for name, service in services.items():
        depends = (service or {}).get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {} for d in depends}
        for dep, spec in depends.items():
            if dep not in services:
                problems.append(f"service {name!r} depends on unknown service {dep!r}")
            elif (spec or {}).get("condition") == "service_healthy" and not services[dep].get(
                "healthcheck"
            ):
                problems.append(f"service {name!r} waits for {dep!r}, which has no healthcheck")
    return problems


def all_problems(compose: dict[str, Any]) -> list[str]:
    return [
        *missing_services(compose),
        *settings_problems(compose),
        *commands_problems(compose),
        *build_problems(compose),
        *dependency_problems(compose),
    ]


# --- the real files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_services_exist(compose: dict[str, Any]) -> None:
    assert missing_services(compose) == []


def test_ragline_environment_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    assert settings_problems(compose) == []
    # the anchor really is applied: the deployed services get the server URLs
    for name in ("api", "worker", "indexer"):
        env = service_environment(compose["services"][name])
        for key in ("RAGLINE_DATABASE_URL", "RAGLINE_REDIS_URL", "RAGLINE_QDRANT_URL"):
            assert env.get(key), f"{name} lacks {key}"


def test_service_commands_are_real_cli_commands(compose: dict[str, Any]) -> None:
    assert commands_problems(compose) == []


def test_ragline_services_build_from_repo_dockerfile(compose: dict[str, Any]) -> None:
    assert build_problems(compose) == []


def test_depends_on_waits_for_healthchecked_services(compose: dict[str, Any]) -> None:
    assert dependency_problems(compose) == []
    for name in ("redis", "postgres", "qdrant", "api"):
        assert compose["services"][name].get("healthcheck"), f"{name} has no healthcheck"


def test_the_schema_is_upgraded_before_any_ragline_process_starts(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "indexer"):
        waits = services[name]["depends_on"]["migrate"]
        assert waits == {"condition": "service_completed_successfully"}, name


def test_indexer_is_a_one_shot_tool(compose: dict[str, Any]) -> None:
    indexer = compose["services"]["indexer"]
    assert indexer.get("profiles") == ["tools"]
    assert indexer.get("restart") == "no"


def test_dockerfile_entrypoint_is_ragline() -> None:
    assert DOCKERFILE.is_file()
    entrypoints = [
        line.split(None, 1)[1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip().upper().startswith("ENTRYPOINT ")
    ]
    assert entrypoints, "Dockerfile has no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["ragline"]


def test_dockerfile_default_command_is_a_real_cli_command() -> None:
    cmds = [
        line.split(None, 1)[1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip().upper().startswith("CMD ")
    ]
    assert cmds, "Dockerfile has no CMD"
    assert command_problems(json.loads(cmds[-1])) == []


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="the docker-compose executable is not on PATH (e.g. apt-get install docker-compose)",
)
def test_docker_compose_config_is_valid() -> None:
    result = subprocess.run(
        [
            shutil.which("docker-compose") or "docker-compose",
            "-f",
            str(COMPOSE_FILE),
            "config",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- the checks catch broken files ------------------------------------------------------


def test_checks_report_a_variable_that_is_not_a_setting(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["environment"]["RAGLINE_NOT_A_SETTING"] = "1"
    problems = all_problems(broken)
    assert any("RAGLINE_NOT_A_SETTING" in p and "'worker'" in p for p in problems), problems


def test_checks_report_a_variable_in_list_form(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["environment"] = ["RAGLINE_REDIS_URL=x", "RAGLINE_NOT_A_SETTING=1"]
    assert settings_problems(broken) == [
        "service 'api': RAGLINE_NOT_A_SETTING is not a Settings field ('not_a_setting')"
    ]


@pytest.mark.parametrize(
    ("service", "command", "expected"),
    [
        ("api", ["serv", "--host", "0.0.0.0"], "no subcommand 'serv'"),
        ("api", ["serve", "--hots", "0.0.0.0"], "no option '--hots'"),
        ("api", ["serve", "--port=8000", "--bind=x"], "no option '--bind'"),
        ("worker", ["workers"], "no subcommand 'workers'"),
        ("worker", ["worker", "extra"], "unexpected extra arguments"),
        ("indexer", ["index", "bild", "/app/examples/handbook"], "no subcommand 'bild'"),
        ("indexer", ["index", "build", "/x", "--if-unchanged"], "no option '--if-unchanged'"),
        ("indexer", ["index", "build", "--promote"], "missing required"),
        ("indexer", ["index"], "needs a subcommand"),
        ("indexer", [], "no command"),
    ],
)
def test_checks_report_a_command_the_cli_does_not_accept(
    compose: dict[str, Any], service: str, command: list[str], expected: str
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"][service]["command"] = command
    problems = all_problems(broken)
    assert any(expected in p and repr(service) in p for p in problems), problems


def test_checks_report_missing_service_and_foreign_build(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    del broken["services"]["qdrant"]
    broken["services"]["indexer"]["build"] = {"context": "./elsewhere"}
    problems = all_problems(broken)
    assert "missing service 'qdrant'" in problems
    assert any("'indexer' does not build" in p for p in problems), problems
    assert any("unknown service 'qdrant'" in p for p in problems), problems


def test_checks_report_a_broken_compose_file_on_disk(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "RAGLINE_LOG_LEVEL: INFO" in text and '["worker"]' in text
    broken_file = tmp_path / "docker-compose.yml"
    broken_file.write_text(
        text.replace("RAGLINE_LOG_LEVEL: INFO", "RAGLINE_NOT_A_SETTING: INFO").replace(
            '["worker"]', '["wrker"]'
        ),
        encoding="utf-8",
    )
    problems = all_problems(load_compose(broken_file))
    assert any("RAGLINE_NOT_A_SETTING" in p for p in problems), problems
    assert any("no subcommand 'wrker'" in p for p in problems), problems
