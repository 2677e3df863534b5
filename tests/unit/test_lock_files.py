"""The image installs requirements.lock: it must pin, with hashes, every dependency pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFRESH = "refresh it as the README's Docker section says (pip-compile --generate-hashes ...)"


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)).lower()


def _pins(path: Path) -> dict[str, str]:
    """name -> the text of its entry (the pin line and its --hash lines)."""
    entries: dict[str, str] = {}
    current = None
    for line in path.read_text().splitlines():
        if re.match(r"[A-Za-z0-9]", line):
            current = _name(line)
            entries[current] = line
        elif current and line.strip().startswith("--hash="):
            entries[current] += "\n" + line
    return entries


def test_requirements_lock_pins_every_runtime_dependency_with_hashes():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins(REPO / "requirements.lock")
    missing = [d for d in project["dependencies"] if _name(d) not in pins]
    assert not missing, f"requirements.lock lacks {missing}: {REFRESH}"
    for name, entry in pins.items():
        assert "==" in entry.splitlines()[0], f"{name} is not pinned to one version"
        assert "--hash=sha256:" in entry, f"{name} has no hash"
    # Only what runs: no build tools and no test dependencies.
    assert not {"pip", "setuptools", "wheel", "pytest"} & set(pins)


def test_requirements_build_lock_pins_the_build_backend():
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    pins = _pins(REPO / "requirements-build.lock")
    assert {_name(r) for r in build} <= set(pins), f"requirements-build.lock is stale: {REFRESH}"
    assert all("--hash=sha256:" in entry for entry in pins.values())
