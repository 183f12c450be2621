"""`dunwell` without its configuration: one clear line and exit status 2, no traceback."""

from __future__ import annotations

from click.testing import CliRunner

from app.cli import cli


def test_a_command_without_secret_key_says_so_in_one_line() -> None:
    result = CliRunner().invoke(cli, ["customers", "risk", "1", "--json"],
                                env={"SECRET_KEY": ""})
    assert result.exit_code == 2
    assert "Error: SECRET_KEY is not set (the demo writes one under instance/)" in result.output
    assert "Traceback" not in result.output
