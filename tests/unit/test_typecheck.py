"""The kernel (shared/) type-checks clean: mypy as configured in pyproject.toml [tool.mypy],
the same run as `make typecheck`, so `make test` fails on a type error in shared/."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_finds_no_type_errors_in_the_kernel():
    # mypy's cache (.mypy_cache, gitignored) makes a run after the first well under a second
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"mypy on shared/ failed:\n{result.stdout}{result.stderr}"
