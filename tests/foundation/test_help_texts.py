"""Every command's --help keeps its text: square brackets ("[default: ...]", "[hpo]") are
words here, not markup to be eaten, and each option's default is shown."""

from __future__ import annotations

import re

import typer
from morphware.runtime.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _commands(cmd, path: tuple[str, ...] = ()) -> list:  # noqa: ANN001 - typer's click
    out = [(path, cmd)]
    if hasattr(cmd, "commands"):
        for name, sub in sorted(cmd.commands.items()):
            out += _commands(sub, (*path, name))
    return out


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _shows_default(p) -> bool:  # noqa: ANN001 - typer's click Parameter
    return (getattr(p, "param_type_name", "") == "option" and not p.hidden and p.show_default is not False
            and p.default not in (None, "") and not p.is_flag and not p.required)


def test_every_help_keeps_its_brackets_and_shows_its_defaults():
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) > 15
    for path, cmd in commands:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        shown = _flat(r.output)
        assert "\\[" not in r.output, (path, r.output)  # no markup escapes left showing
        texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
        for text in texts:
            for bracketed in re.findall(r"\[[^\]]*\]", text):
                assert _flat(bracketed) in shown, (path, bracketed, r.output)
        entries = _option_entries(r.output)
        for p in cmd.params:
            if _shows_default(p):
                opt = max(p.opts, key=len)
                entry = next((e for e in entries if re.search(rf"(^|[ ,]){opt}\b", e)), "")
                assert "[default:" in entry, (path, opt, r.output)


def _option_entries(output: str) -> list[str]:
    """The Options section, one flattened string per option (an entry starts at a line
    indented by two spaces; deeper-indented lines continue it)."""
    entries: list[str] = []
    for line in output.splitlines():
        if re.match(r"^  -", line):
            entries.append(line)
        elif entries and line.startswith("   "):
            entries[-1] += " " + line.strip()
    return [_flat(e) for e in entries]
