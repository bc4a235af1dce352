"""The Cloud Function as the platform runs it: a real ``functions-framework`` process on a loopback port.

    with FunctionProcess("trigger_dag", "cloudevent", {"DAG_TRIGGER_CONFIG": str(config)}, tmp_path / "fn.log") as fn:
        assert fn.post_binary(load_event("gcs_finalized.cloudevent.json")).status_code == 200
        assert fn.log_lines()[-1]["severity"] == "INFO"

The process gets the test's environment without anything that configures the function or reaches
Google (``DAG_TRIGGER_CONFIG``, ``DAG_ID``, ``AIRFLOW_*``, ``TRIGGER_*``, ``COMPOSER_*``, ``IAP_*``,
``GOOGLE_*``, ``CLOUDSDK_*``), so a developer's shell cannot change what a test sees; pass those in
``env``. It runs in a session of its own and is stopped by process group (SIGTERM, then SIGKILL), also
when the test fails.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import requests

from scripts.local_airflow import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT / "gcf_trigger" / "main.py"
SIGNATURE_TYPES = ("cloudevent", "http")

_ISOLATED = ("DAG_TRIGGER_CONFIG", "DAG_ID", "AIRFLOW_", "TRIGGER_", "COMPOSER_", "IAP_", "GOOGLE_", "CLOUDSDK_")
# The CloudEvents HTTP binding percent-encodes header values outside printable ASCII, and '"' and '%'.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')
_START_TIMEOUT = 30.0
_STOP_GRACE = 10.0
_REQUEST_TIMEOUT = 60.0


class FunctionProcess:
    """``functions-framework --source gcf_trigger/main.py --target TARGET`` serving on ``url``."""

    def __init__(
        self,
        target: str,
        signature_type: str,
        env: Mapping[str, str],
        log_path: Path | None = None,
        *,
        source: Path = SOURCE,
        venv: Path | None = None,
    ) -> None:
        """``source`` and ``venv`` default to this checkout and the running interpreter's venv; a packaged
        function passes its unpacked ``main.py`` and the venv its requirements were installed into."""
        if signature_type not in SIGNATURE_TYPES:
            raise ValueError(f"signature_type must be one of {SIGNATURE_TYPES}, got {signature_type!r}")
        self.target = target
        self.signature_type = signature_type
        self.env = dict(env)
        self.source = source
        self.bin_dir = Path(sys.executable).parent if venv is None else venv / "bin"
        self._own_dir: Path | None = None
        if log_path is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="function-"))
            log_path = self._own_dir / "function.log"
        #: Where the process's stdout and stderr go (unless given, a temporary file removed on stop).
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process and return once it answers HTTP; raises ``RuntimeError`` with its log if it does not."""
        command = [
            str(self.bin_dir / "functions-framework"),
            *("--source", str(self.source), "--target", self.target, "--signature-type", self.signature_type),
            *("--host", "127.0.0.1", "--port", str(self.port)),
        ]
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED)}
        # Unbuffered, so every line is in the log file by the time the response arrives.
        env = {**inherited, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                command,
                # A packaged function runs from its unpacked root, as on the platform (/workspace).
                cwd=REPO_ROOT if self.source == SOURCE else self.source.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        atexit.register(self.stop)
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after a grace period. Idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            # start_new_session made the process the leader of its own group, with id == its pid; gunicorn's
            # workers are in that group too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_STOP_GRACE)
            # Whatever is left (a hung master, a worker that outlived it) goes now.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(f"functions-framework exited with code {code}:\n{self.log_text()}")
            with contextlib.suppress(requests.ConnectionError):
                requests.get(self.url, timeout=1)
                return  # any answer (a cloudevent function answers GET with 405) means it is serving
            if time.monotonic() > deadline:
                raise RuntimeError(f"functions-framework not answering after {_START_TIMEOUT:.0f}s:\n{self.log_text()}")
            time.sleep(0.05)

    # --- requests -----------------------------------------------------------------------------

    def post_binary(self, event: Mapping[str, Any]) -> requests.Response:
        """POST a CloudEvent in binary content mode: attributes as percent-encoded ``ce-*`` headers, data as body."""
        headers = {
            f"ce-{name}": quote(str(value), safe=_HEADER_SAFE)
            for name, value in event.items()
            if name not in ("data", "datacontenttype")
        }
        headers["Content-Type"] = str(event.get("datacontenttype", "application/json"))
        return self._post(json.dumps(event.get("data")).encode(), headers)

    def post_structured(self, event: Mapping[str, Any]) -> requests.Response:
        """POST a CloudEvent in structured content mode: the whole event as the body."""
        return self._post(json.dumps(event).encode(), {"Content-Type": "application/cloudevents+json"})

    def post_json(self, body: Any) -> requests.Response:
        """POST ``body`` as JSON (an HTTP function's request)."""
        return self._post(json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _post(self, data: bytes, headers: Mapping[str, str]) -> requests.Response:
        return requests.post(self.url, data=data, headers=dict(headers), timeout=_REQUEST_TIMEOUT)

    # --- logs ---------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The log lines so far, parsed; a line that is not a JSON object fails the test that reads it."""
        lines = []
        for number, line in enumerate(self.log_text().splitlines(), 1):
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise AssertionError(f"{self.log_path}:{number} is not a JSON log line: {line[:200]!r}")
            lines.append(parsed)
        return lines
