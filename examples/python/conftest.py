"""A pytest fixture that gives each test session its own Lanyard.

Lanyard runs in memory (--ephemeral), built from a seed file, with --dev-login so that
`/authorize?...&login_hint=alice` signs alice in without a password form: a plain HTTP client
can run the whole code flow. It starts either

  * the binary: LANYARD_BIN=/path/to/lanyard (or `lanyard` on PATH), about 0.1 s, or
  * the container image: LANYARD_IMAGE=lanyard (docker run), a second or two,

on a free loopback port, and is stopped when the session ends.
"""

import os
import pathlib
import shutil
import socket
import subprocess
import time

import pytest
import requests

SEED = pathlib.Path(os.environ.get("LANYARD_SEED_FILE", pathlib.Path(__file__).parent.parent / "lanyard-seed.toml"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(issuer, process=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"lanyard exited with {process.returncode}")
        try:
            if requests.get(issuer + "/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{issuer}/readyz did not answer within {timeout} s")


@pytest.fixture(scope="session")
def lanyard():
    """The issuer URL of a running Lanyard (its discovery document is below it)."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    image = os.environ.get("LANYARD_IMAGE")
    if image:
        name = f"lanyard-pytest-{port}"
        subprocess.run(
            ["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8080",
             "-e", f"LANYARD_ISSUER={issuer}", "-v", f"{SEED.resolve()}:/seed.toml:ro",
             image, "--ephemeral", "--dev-login", "--seed", "/seed.toml"],
            check=True, stdout=subprocess.DEVNULL,
        )
        try:
            wait_ready(issuer)
            yield issuer
        finally:
            subprocess.run(["docker", "rm", "-f", "-v", name], stdout=subprocess.DEVNULL, check=False)
        return
    binary = os.environ.get("LANYARD_BIN") or shutil.which("lanyard")
    if not binary:
        pytest.skip("set LANYARD_BIN (a lanyard binary) or LANYARD_IMAGE (a container image)")
    process = subprocess.Popen(
        [binary, "--ephemeral", "--dev-login", "--seed", str(SEED),
         "--bind", f"127.0.0.1:{port}", "--issuer", issuer],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_ready(issuer, process)
        yield issuer
    finally:
        process.terminate()
        process.wait(timeout=10)
