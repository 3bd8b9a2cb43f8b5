"""Separate processes on loopback: a 200 MB artifact published by one node, fetched and
decrypted by another; a third node without the key gets only ciphertext."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

NODE = Path(__file__).with_name("node_proc.py")
SIZE = 200 * (1 << 20)


def _run(*args: str, timeout: float = 90) -> dict:
    done = subprocess.run([sys.executable, str(NODE), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.integration
def test_200mb_between_processes(tmp_path: Path, make_file, keypair) -> None:
    priv, pub = keypair
    src = make_file(SIZE, "big.npz")
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    seeder = subprocess.Popen([sys.executable, str(NODE), "publish", str(tmp_path / "a"),
                               str(src), pub.hex()],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = seeder.stdout.readline()
        assert line, seeder.stderr.read()[-3000:]
        pubd = json.loads(line)
        got = _run("fetch", str(tmp_path / "b"), pubd["magnet"], pubd["hash"],
                   pubd["wrapped"], priv.hex())
        assert got["sha256"] == want
        assert Path(got["path"]).stat().st_size == SIZE
        thief = _run("thief", str(tmp_path / "c"), pubd["magnet"], pubd["hash"],
                     pubd["wrapped"])
        assert thief["ciphertext_ok"]
        assert [r.split(":")[0] for r in thief["refused"]] == ["KeyWrapError", "DecryptionError"]
        assert thief["plaintext_files"] == []
    finally:
        seeder.stdin.close()
        try:
            seeder.wait(timeout=20)
        except subprocess.TimeoutExpired:
            seeder.kill()
            seeder.wait()
