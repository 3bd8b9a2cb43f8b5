"""anvil on first use: found where make setup or an earlier run put it, else installed from npm
into the per-user tools folder, else a message that says what to run. npm is a stand-in script
here (the real registry is not a test dependency)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from morphware.contracts import anvil
from morphware.runtime import cli

FAKE_NPM = """#!/bin/sh
# records its arguments, then lays out what `npm install --prefix P @foundry-rs/anvil` does
PATH=/usr/bin:/bin
echo "$@" > "$NPM_LOG"
prefix=$3
mkdir -p "$prefix/node_modules/@foundry-rs/anvil-linux-amd64/bin"
printf '#!/bin/sh\\necho "anvil Version: 0.0.0-test"\\n' > "$prefix/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
chmod +x "$prefix/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
"""


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No anvil anywhere: only the per-user tools folder is searched (empty), and PATH holds
    only a folder of stand-ins."""
    tools = tmp_path / "user-tools"
    monkeypatch.setenv("MORPHWARE_TOOLS", str(tools))
    monkeypatch.delenv("MORPHWARE_ANVIL", raising=False)
    monkeypatch.setattr(anvil, "tool_prefixes", lambda: [anvil.user_tools_dir()])
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


def _install_fake_npm(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = root / "bin"
    bindir.mkdir(exist_ok=True)
    npm = bindir / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    log = root / "npm.log"
    monkeypatch.setenv("NPM_LOG", str(log))
    return log


def test_first_use_installs_from_npm_into_the_user_tools_folder(
        isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert anvil.anvil_bin() is None
    log = _install_fake_npm(isolated, monkeypatch)
    said: list[str] = []
    found = anvil.ensure_anvil(log=said.append)
    assert found.is_relative_to(isolated / "user-tools")
    assert log.read_text().split()[:3] == ["install", "--prefix", str(isolated / "user-tools")]
    assert anvil.NPM_PACKAGE in log.read_text()
    assert said and "first use" in said[0]
    log.unlink()
    assert anvil.ensure_anvil() == found  # the second use finds it: npm is not run again
    assert not log.exists()


def test_without_npm_the_message_says_what_to_install(isolated: Path) -> None:
    with pytest.raises(anvil.AnvilUnavailable, match="npm") as e:
        anvil.ensure_anvil()
    assert anvil.install_command() in str(e.value)


def test_npm_that_fails_is_reported(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_npm(isolated, monkeypatch)
    (isolated / "bin" / "npm").write_text("#!/bin/sh\necho 'npm error 404 Not Found' >&2\nexit 1\n")
    with pytest.raises(anvil.AnvilUnavailable, match="404 Not Found"):
        anvil.install_anvil()


def test_devnet_without_npm_is_one_clear_line(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["morphware", "devnet", "-o", str(isolated / "dep.json")])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == cli.EXIT_MISSING
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "npm" in err and "Traceback" not in err


def test_morphware_anvil_must_point_at_a_program(isolated: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORPHWARE_ANVIL", str(isolated / "nothing-here"))
    assert anvil.anvil_bin() is None
