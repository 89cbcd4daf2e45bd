"""The production image, checked without a Docker engine: lint it, and run its exact start command."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.test_cli import wait_for

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _exec_form(instruction: str) -> list[str]:
    """The JSON exec form of a Dockerfile instruction (CMD, or HEALTHCHECK's CMD)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    match = re.search(rf"^{instruction}\s.*?(\[.*\])\s*$", text, flags=re.MULTILINE)
    assert match, f"no exec-form {instruction} in the Dockerfile"
    return list(json.loads(match.group(1)))


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_start_command_and_healthcheck_work_outside_docker(tmp_path: Path) -> None:
    start = _exec_form("CMD")
    healthcheck = _exec_form("HEALTHCHECK")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTS_")}
    # The image's ENV, except that tests listen on loopback only and keep data in a temp dir.
    env.update(
        COMMENTS_HOST="127.0.0.1",
        COMMENTS_PORT=str(port),
        COMMENTS_WORKERS="2",
        COMMENTS_DATA_DIR=str(tmp_path / "var"),
    )
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '')}"
    with subprocess.Popen(
        start, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            assert wait_for(f"http://127.0.0.1:{port}/healthz", proc).status_code == 200
            assert httpx.get(f"http://127.0.0.1:{port}/demo").status_code == 200
            assert subprocess.run(healthcheck, env=env, check=False, timeout=10).returncode == 0
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_the_image_does_not_run_as_root() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")
