"""The package installs with pip (no network, no dependencies) and imports from where it went."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import CLIENT_DIR


def test_pip_install_target_then_import(tmp_path: Path) -> None:
    # Build from a copy, so that the build leaves nothing (build/, *.egg-info) in the tree.
    source = tmp_path / "src"
    shutil.copytree(CLIENT_DIR, source,
                    ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    target = tmp_path / "site"
    # --no-build-isolation: use the installed setuptools instead of fetching one (offline CI);
    # --target: Debian 12's pip refuses to install into the system Python (PEP 668).
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                    "--no-index", "--no-deps", "--disable-pip-version-check", "--target",
                    str(target), str(source)], check=True, cwd=tmp_path)
    probe = ("import pm_ingestd, pathlib, sys; "
             "print(pm_ingestd.__file__); print(pm_ingestd.__version__); "
             "print(pm_ingestd.IngestClient.__name__, pm_ingestd.RangeError.__mro__[1].__name__); "
             "print((pathlib.Path(pm_ingestd.__file__).parent / 'py.typed').exists())")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {probe}"],
                         check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split("\n")
    assert out[0].startswith(str(target)), out
    assert out[1] == "0.1.0"
    assert out[2] == "IngestClient RejectedError"
    assert out[3] == "True"
    assert list(target.glob("pm_ingestd-0.1.0.dist-info")), list(target.iterdir())
