"""The README documents every `seed` command and every option, as `seed --help` lists them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from seeding.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def commands(command: Any, path: tuple[str, ...] = ("seed",)) -> list[tuple[str, Any]]:
    """Return every command and group of the app with its path (``seed db create``)."""
    found = [(" ".join(path), command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            found += commands(sub, (*path, name))
    return found


COMMANDS = commands(typer.main.get_command(app))


def cli_section() -> str:
    """Return README's "Using the CLI" section, up to the next section of its level."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Using the CLI\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def usage(path: str) -> list[str]:
    """Return the section's lines that give ``path``'s usage (``seed db url [--db URL]``)."""
    pattern = re.compile(r"^\$?\s*" + r"\s+".join(map(re.escape, path.split())) + r"(?![\w-])")
    return [line for line in cli_section().splitlines() if pattern.match(line)]


def test_the_walk_finds_the_commands() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"seed scenario", "seed report", "seed reset", "seed db create", "seed db doctor",
            "seed db stop"} <= paths


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_and_option_is_in_the_readme(path: str, command: Any) -> None:
    lines = usage(path)
    if not getattr(command, "commands", None):  # a group needs a line only for its options
        assert lines, f"README's CLI section has no usage line for `{path}`"
    documented = "\n".join(lines)
    for param in command.params:
        if param.param_type_name == "argument":
            metavar = param.name.upper()
            assert metavar in documented, f"`{path}`: argument {metavar} not in {lines}"
            continue
        for option in (*param.opts, *param.secondary_opts):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", documented), (
                f"`{path}`: option {option} is not on its usage line in README's CLI section"
            )


def test_the_readme_says_every_command_has_help() -> None:
    assert "`--help`" in cli_section()
