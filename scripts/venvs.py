"""Tool virtualenvs beside the repo, each built from one pinned requirements file and rebuilt when it changes.

Airflow, python-hcl2 and checkov each get their own venv: their dependency trees clash with the project's
and with one another (checkov pins its own fork of the ``hcl2`` module, which overwrites python-hcl2).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
_STAMP_NAME = ".requirements.sha256"
_LOG_TAIL_LINES = 40


def log(message: str) -> None:
    """One progress line on stderr, tagged so it stands out in test and make output."""
    print(f"[venvs] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _install_lock(venv: Path) -> Iterator[None]:
    # Parallel test workers and make jobs may ask for the same venv together; serialise them so only
    # one pip run builds it. The lock lives in the temp dir to keep the repo root free of stray files.
    tag = hashlib.sha256(str(venv).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"dag-trigger-venv-{tag}.lock"
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines of a log file, for an error message."""
    try:
        with path.open(errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def ensure(venv: Path, requirements: Path, executable: str) -> Path:
    """Return ``venv``, built from ``requirements`` unless its stamp says it already was.

    The venv is reused when the sha256 of the requirements file matches the stamp written after the last
    successful install and ``bin/<executable>`` exists; otherwise it is recreated from scratch, so no stale
    package survives a pin change.
    """
    if not requirements.is_file():
        raise FileNotFoundError(f"missing requirements file {requirements}")
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / _STAMP_NAME
    with _install_lock(venv):
        if (venv / "bin" / executable).exists() and stamp.is_file() and stamp.read_text().strip() == digest:
            return venv
        log(f"installing {requirements.name} into {venv.name} (takes a minute or two)")
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        # pip's output is long and full of index warnings; keep it in a file and show it only on failure.
        pip_log = venv / "pip-install.log"
        with pip_log.open("w") as log_file:
            result = subprocess.run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-r",
                    str(requirements),
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(
                f"pip install of {requirements.name} failed (exit {result.returncode}); "
                f"last lines of {pip_log}:\n{tail(pip_log)}"
            )
        # Stamp last so an interrupted install is never mistaken for a good one.
        stamp.write_text(digest + "\n")
        log(f"installed {venv.name} in {time.monotonic() - started:.0f}s")
    return venv
