"""The docs: every command and option has help text, and --help works without loading the model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.cli import cli

ROOT = Path(__file__).parent.parent
COMMANDS = sorted(cli.commands)


def test_the_expected_commands_exist():
    assert COMMANDS == ["clusters", "dedup", "eval", "index", "info", "query", "remove", "report", "score-pairs"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_text(name):
    command = cli.commands[name]
    assert command.help and command.help.strip(), f"{name} has no docstring"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: cli {name} [OPTIONS]")
    assert " ".join(command.help.split()[:8]) in " ".join(result.stdout.split())
    # every option is explained
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert param.help, f"{name} {param.opts} has no help text"


def test_group_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == COMMANDS


def test_help_is_instant_it_does_not_load_the_model():
    code = ("import sys; from detector.cli import main; sys.argv = ['detector', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.startswith("Usage: detector [OPTIONS] COMMAND [ARGS]...")
    assert result.stdout.splitlines()[-1] == "[]"


def test_python_dash_m_detector():
    result = subprocess.run([sys.executable, "-m", "detector", "--version"], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout == "detector, version 0.1.0\n"



README = Path(__file__).parent.parent / "README.md"


def test_the_readme_documents_every_command_and_names_only_real_ones():
    text = README.read_text(encoding="utf-8")
    shell = "\n".join(re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL))
    named = set(re.findall(r"^(?:cat \S+ \| )?detector ([a-z-]+)", shell, flags=re.MULTILINE))
    named |= set(re.findall(r"`detector ([a-z-]+)", text))
    assert named == set(cli.commands)


def test_the_readme_setup_commands_are_makefile_targets_and_ci_runs_the_test_one():
    text = README.read_text(encoding="utf-8")
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert f"make {target}" in text
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE)
    assert "make test" in (README.parent / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readme_python_examples_use_real_names():
    import detector

    text = README.read_text(encoding="utf-8")
    for name in re.findall(r"detector\.(\w+)\(", text):
        assert hasattr(detector.Detector, name), name
    for name in re.findall(r"^from detector import (.+)$", text, flags=re.MULTILINE):
        for item in name.split(","):
            assert hasattr(detector, item.strip()), item


def test_every_profiles_parameters_ship_in_the_package():
    # an installed (not editable) package holds only the data files pyproject.toml declares
    import fnmatch
    import tomllib

    from detector.config import PROFILES

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["detector"]
    for profile in PROFILES.values():
        assert any(fnmatch.fnmatch(profile.params_file, pattern) for pattern in declared), profile.params_file
        assert (ROOT / "detector" / profile.params_file).is_file()
