"""README's examples run as written: its Python blocks, and its console examples' real output.

Every ```python block runs: a test file (``# tests/...``) through pytester with the plugin, on
this session's server; any other block as a script. Every ``$ seed ...`` line of a ```console
block runs with the CliRunner on a database of its own (``--db`` given or added: README shows
the embedded server), and its output is compared with README's: the lines before a ``...``
exactly, the rest in order; what differs from machine to machine (where the database is, the
time taken, a run's id and date) is masked on both sides.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from seeding.cli import app

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()


def fenced(language: str) -> list[str]:
    """Return the bodies of README's fenced blocks in that language."""
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


@dataclass
class Example:
    """One ``$ command`` of a console block and the lines README shows after it."""

    command: str
    output: list[str] = field(default_factory=list)

    @property
    def arguments(self) -> list[str]:
        """The command's words, without a trailing comment or a redirection of a stream."""
        words = shlex.split(self.command, comments=True)
        return [w for i, w in enumerate(words) if w not in (">", "<")
                and (i == 0 or words[i - 1] not in (">", "<"))]


def console_blocks() -> list[list[Example]]:
    """Return each console block as its examples."""
    blocks = []
    for body in fenced("console"):
        examples: list[Example] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                examples.append(Example(line[2:]))
            elif examples:
                examples[-1].output.append(line)
        blocks.append(examples)
    return blocks


def seed_commands() -> list[list[Example]]:
    """Return the console blocks that run ``seed`` (the plugin's `pytest` block is below)."""
    return [b for b in console_blocks() if any(e.arguments[0] == "seed" for e in b)]


#: Examples that cannot run here, with why.
NOT_RUN = {
    ("seed", "db", "shell"): "replaces the process with psql",
}

#: Examples too big for a test, run smaller: README's --scale, and what runs instead.
SCALED = {"10": "0.01"}

MASKS = [
    (re.compile(r"^database: .*"), "database: <where>"),
    (re.compile(r"^postgresql://\S+$"), "<url>"),
    (re.compile(r" in \d+\.\d+ s( \([\d,]+ rows/s\))?$"), " in <seconds>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<run>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"), "<time>"),
]


def masked(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, replacement in MASKS:
            line = pattern.sub(replacement, line)
        out.append(line)
    return out


def command_of(arguments: list[str]) -> Any:
    """Return the click command the words name (``seed db create`` → ``create``)."""
    command = typer.main.get_command(app)
    for word in arguments[1:]:
        commands = getattr(command, "commands", None)
        if not commands or word not in commands:
            break
        command = commands[word]
    return command


def expected_exit_code(output: list[str]) -> int:
    if output and output[0].startswith("error: "):
        return 2
    if any(re.fullmatch(r"\d+ problems?:", line) for line in output):
        return 1
    return 0


def assert_shown(readme: list[str], real: list[str], command: str) -> None:
    """README's lines before a ``...`` are the output's first; the rest come in order."""
    readme, real = masked(readme), masked(real)
    head = readme.index("...") if "..." in readme else len(readme)
    assert real[:head] == readme[:head], command
    rest = iter(real[head:])
    for line in readme[head:]:
        if line != "...":
            assert line in rest, f"{command}: {line!r} is not in the output, or not in order"


BLOCKS = seed_commands()


@pytest.mark.parametrize("block", BLOCKS, ids=[b[0].command for b in BLOCKS])
def test_a_console_example_gives_its_output(
    block: list[Example],
    make_database: Callable[[], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app_shape import create_app_shape

    monkeypatch.chdir(tmp_path)  # where `seed report --output missing/...` looks
    monkeypatch.delenv("SEED_DATABASE_URL", raising=False)
    url = make_database()  # one database for the block: its examples follow each other
    for example in block:
        arguments = example.arguments
        if tuple(arguments) in NOT_RUN:
            continue
        if "--db" in arguments:
            given = arguments.index("--db") + 1
            if "app_migrations" in arguments[given]:  # the doctor's example: the app's shape
                create_app_shape(url)
            arguments[given] = url
        elif any(p.name == "db" for p in command_of(arguments).params):
            arguments += ["--db", url]
        scaled = "--scale" in arguments and arguments[arguments.index("--scale") + 1] in SCALED
        if scaled:
            at = arguments.index("--scale") + 1
            arguments[at] = SCALED[arguments[at]]
        result = runner.invoke(app, arguments[1:])
        wanted = expected_exit_code(example.output)
        assert result.exit_code == wanted, f"{example.command}\n{result.output}"
        real = result.output.splitlines()
        if scaled:  # other counts: the same lines, table by table
            assert [line.split()[0] for line in real[2:]] == [
                line.split()[0] for line in example.output[2:]
            ], example.command
            continue
        assert_shown(example.output, real, example.command)


def test_every_console_example_is_run_or_says_why_not() -> None:
    for block in console_blocks():
        for example in block:
            words = example.arguments
            if words[0] != "seed":
                # The plugin's example session: its test file runs in the test below.
                assert words[-1] == "pytest" or words[-2:] == ["pytest", "-v"], example.command
                continue
            assert tuple(words) not in NOT_RUN or not example.output, example.command


def python_blocks() -> list[str]:
    return fenced("python")


def test_readme_has_the_python_examples() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 2
    assert sum(block.startswith("# tests/") for block in blocks) >= 1


@pytest.mark.parametrize(
    "block",
    [b for b in python_blocks() if not b.startswith("# tests/")],
    ids=lambda block: block.splitlines()[0],
)
def test_a_python_example_runs_as_copied(block: str) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - README's own example


@pytest.mark.parametrize(
    "block",
    [b for b in python_blocks() if b.startswith("# tests/")],
    ids=lambda block: block.splitlines()[0].removeprefix("# "),
)
def test_a_pytest_example_passes_with_the_plugin(
    block: str, pytester: pytest.Pytester, pg_server_url: str
) -> None:
    name = Path(block.splitlines()[0].removeprefix("# ")).stem
    pytester.makepyfile(**{name: block})
    result = pytester.runpytest_subprocess("--seed-database-url", pg_server_url)
    tests = len(re.findall(r"^def test_", block, re.M))
    result.assert_outcomes(passed=tests)
