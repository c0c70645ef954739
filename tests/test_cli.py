"""The `attest` CLI's error paths (one line, exit 2, never a traceback) and the CI templates' commands."""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from attest_cli.main import build_parser, main
from tests.governance.workflow_factories import person, token_for

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = [REPO / "docs" / "ci" / "github-actions.yml", REPO / "docs" / "ci" / "gitlab-ci.yml"]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    assert captured.err.startswith("attest: error: ")
    return captured.err.strip()


def test_unreachable_server_exits_2_with_one_line(capsys):
    # when
    code = main(["--url", "http://127.0.0.1:9", "--token", "t", "gate", "--model", "m", "--version", "1",
                 "--environment", "production", "--sha256", "a" * 64])
    # then
    assert code == 2
    assert "cannot reach http://127.0.0.1:9" in _one_error_line(capsys)


def test_missing_url_or_token_exits_2(capsys, monkeypatch):
    monkeypatch.delenv("ATTEST_URL", raising=False)
    monkeypatch.delenv("ATTEST_TOKEN", raising=False)
    assert main(["record-deployment", "--model", "m", "--version", "1", "--environment", "e",
                 "--decision-id", "x"]) == 2
    assert "--url and --token" in _one_error_line(capsys)


def test_bad_usage_exits_2():
    assert main(["gate", "--model", "m"]) == 2
    assert main(["no-such-command"]) == 2


def test_unreadable_artifact_exits_2_before_any_request(capsys, tmp_path):
    code = main(["--url", "http://127.0.0.1:9", "--token", "t", "register-model-version", "--model", "m",
                 "--artifact", str(tmp_path / "missing.skops")])
    assert code == 2
    assert "cannot read" in _one_error_line(capsys)


def test_verify_log_of_a_missing_export_exits_2(capsys, tmp_path):
    assert main(["verify-log", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in _one_error_line(capsys)


@pytest.mark.django_db(transaction=True)
def test_rate_limited_cli_prints_the_code_and_retry_after(live_server, settings, capsys):
    # given: a tiny rate for tokens
    settings.ATTEST_THROTTLE_RATES = {"token": "2/min", "user": "100/min", "anon": "100/min"}
    key = token_for(person("ci-bot", "ci_service"), "gate:check")
    argv = ["--url", live_server.url, "--token", key, "gate", "--model", "nope", "--version", "1",
            "--environment", "production", "--sha256", "a" * 64]
    # when: two answers (404: unknown model), then the limit
    codes = [main(argv) for _ in range(3)]
    # then
    assert codes == [2, 2, 2]
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("attest: error: HTTP 404 not_found: ")
    assert re.fullmatch(r"attest: error: HTTP 429 rate_limited: .* \(retry after \d+ s\)", lines[2])


def _template_commands(path: Path) -> list[list[str]]:
    """Every `attest …` invocation in a template's shell steps, as argv (variables as placeholders)."""
    document = yaml.safe_load(path.read_text())
    scripts: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script") and isinstance(value, str):
                    scripts.append(value)
                elif key in ("script",) and isinstance(value, list):
                    scripts.extend(str(v) for v in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    commands = []
    for script in scripts:
        text = re.sub(r"\$\{\{[^}]*\}\}", "1", script.replace("\\\n", " "))
        for line in text.splitlines():
            for match in re.finditer(r"(?:^|\$\(|\s)(attest\s[^)>|]*)", line):
                argv = shlex.split(re.sub(r'"?\$[A-Z_]+"?', "1", match.group(1)))[1:]
                commands.append(argv)
    return commands


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_ci_templates_are_yaml_and_every_attest_command_parses(template):
    commands = _template_commands(template)
    names = {argv[0] for argv in commands}
    assert {"register-dataset", "register-model-version", "evaluate", "gate", "record-deployment"} <= names
    parser = build_parser()
    for argv in commands:
        parser.parse_args(["--url", "https://attest.example.com", "--token", "t", *argv])
