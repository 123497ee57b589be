"""The check behind every wrong-input test of the command line: one line on stderr that
starts with "error: ", and exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bertforge.cli.main import app


def one_line_error(*args: str | Path) -> str:
    """Run `bertforge ARGS`; return its one error line."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]
