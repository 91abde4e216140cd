"""Help text without type placeholders on flags, shell completion, and colour only on a
terminal without NO_COLOR."""

from __future__ import annotations

import io

import pytest

from qkt.cli.render import colour_wanted, table
from tests.supervisor.daemons import child_env, qkt

COMMANDS = ("deploy", "list", "status", "logs", "stop", "restart", "rm", "run", "check")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_bool_placeholders(command: str) -> None:
    done = qkt(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "<bool>" not in done.stdout and "\x1b[" not in done.stdout


def test_completion_completes_commands_and_installs() -> None:
    import subprocess

    from tests.helpers import PYTHON

    env = child_env(_QKT_COMPLETE="complete_bash", COMP_WORDS="qkt res", COMP_CWORD="1")
    script = "from qkt.cli.main import main; main()"
    done = subprocess.run(
        [PYTHON, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.stdout.split() == ["restart", "resume"]
    shown = qkt("--show-completion", "bash")
    assert shown.returncode == 0 and "_QKT_COMPLETE" in shown.stdout
    assert "--install-completion" in qkt("--help").stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted(Terminal())
    assert not colour_wanted(io.StringIO())  # piped
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted(Terminal())
    rows = [["a", "running", "-1.50"], ["b", "failed", "2.00"]]
    coloured = table(["NAME", "STATE", "PNL"], rows, colour=True).splitlines()
    plain = table(["NAME", "STATE", "PNL"], rows).splitlines()
    assert "\x1b[32mrunning" in coloured[1] and "\x1b[31m-1.50" in coloured[1]
    assert "\x1b[1;31mfailed" in coloured[2]
    strip = [line.replace("\x1b[0m", "").split("\x1b[") for line in coloured]
    assert len(strip[0]) == 1  # the header is never coloured
    assert "\x1b" not in "".join(plain)


def test_the_help_listing_matches_each_command() -> None:
    """`qkt --help` lists the commands without building them: its sentences are the commands'
    own first sentences."""
    import typer

    from qkt.cli.app import COMMANDS, build

    for name, (_, _, sentence) in COMMANDS.items():
        group = typer.main.get_command(build(name))
        assert isinstance(group, typer.core.TyperGroup)
        assert group.commands[name].get_short_help_str(1000) == sentence, name
    listed = qkt("--help").stdout
    assert all(f"  {name} " in listed for name in COMMANDS)
