"""The deployable zips' sizes, built with ``scripts.package`` exactly as ``make package`` builds them.

The layer is built for this machine (``host=True``): the Lambda build differs only in its compiled wheels'
platform tags, so its size is close but not equal. pip needs PyPI (or its cache) for the layer.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import progress

#: Packages the Lambda runtime already has: none of them may be in the code zip or the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six")


def _top_level(name: str, under: str = "") -> str:
    """The importable top-level name a zip entry belongs to (``requests``, ``typing_extensions``)."""
    parts = name.removeprefix(under).split("/")
    if parts[0].endswith((".dist-info", ".egg-info")):
        return "(package metadata)"
    # A directory is the package; a lone file (typing_extensions.py, a .so) is a module.
    return parts[0] if len(parts) > 1 else parts[0].split(".")[0]


def build(out: Path) -> dict[str, Any]:
    """Build the three zips into ``out``; their sizes, file counts, and what the layer is made of."""
    import zipfile

    from scripts import package

    progress("package: building the zips (pip installs the layer)")
    built = package.build_all(out, host=True)
    function, code, layer = built[package.FUNCTION_ZIP], built[package.LAMBDA_ZIP], built[package.LAYER_ZIP]
    by_package: Counter[str] = Counter()
    with zipfile.ZipFile(layer.path) as archive:
        for info in archive.infolist():
            by_package[_top_level(info.filename, "python/")] += info.compress_size

    def unpacked(path: Path) -> int:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())

    layer_tops = {_top_level(name, "python/") for name in layer.names}
    code_tops = {_top_level(name) for name in code.names}
    return {
        "paths": {"function": str(function.path), "lambda": str(code.path), "layer": str(layer.path)},
        "function_bytes": function.size,
        "function_unpacked_bytes": unpacked(function.path),
        "lambda_unpacked_bytes": unpacked(code.path),
        "layer_unpacked_bytes": unpacked(layer.path),
        "function_files": len(function.names),
        "lambda_bytes": code.size,
        "lambda_files": len(code.names),
        "layer_bytes": layer.size,
        "layer_files": len(layer.names),
        "lambda_top_level": sorted(code_tops),
        "runtime_packages_in_lambda": sorted(code_tops & set(RUNTIME_PROVIDED)),
        "runtime_packages_in_layer": sorted(layer_tops & set(RUNTIME_PROVIDED)),
        "layer_largest": [{"package": name, "compressed_bytes": size} for name, size in by_package.most_common(6)],
    }
