"""The Terraform under ``terraform/``, parsed once per session by python-hcl2 in its own venv."""

from __future__ import annotations

from typing import Any

import pytest

from scripts import tf_tools


@pytest.fixture(scope="session")
def documents() -> dict[str, dict[str, Any]]:
    """Every ``.tf`` file, normalized (:func:`scripts.tf_tools.normalize`), by repo-relative path."""
    return tf_tools.parse()
