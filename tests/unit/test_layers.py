"""Imports point down: the shared auth and templates layers know no feature, the admin pages no API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ("fedserver.api", "fedserver.admin", "fedserver.web", "fedserver.federation", "rewards", "storefront")


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module (and imported name) each module of a package imports, relative imports resolved."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        home = parts if is_package else parts[:-1]  # what a relative import starts from
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                anchor = home[: len(home) - node.level + 1] if node.level else []
                target = ".".join([*anchor, *([node.module] if node.module else [])])
                names.add(target)
                names.update(f"{target}.{alias.name}" for alias in node.names)
        found[".".join(parts)] = names
    return found


def _offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in imported_modules(package).items()
                  for name in names if any(name == f or name.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("package", ["fedserver.auth", "fedserver.templates"])
def test_the_shared_layers_import_no_feature_package(package):
    assert len(imported_modules(package)) >= 4
    assert _offending(package, FEATURES) == []


def test_the_admin_pages_import_nothing_from_the_api():
    assert "fedserver.auth.check_login_form" in set().union(*imported_modules("fedserver.admin").values())
    assert _offending("fedserver.admin", ("fedserver.api",)) == []


def test_the_import_resolver_sees_relative_imports():
    assert "fedserver.auth.login.check_login_form" in imported_modules("fedserver.auth")["fedserver.auth"]
    assert "fedserver.api.auth.current_auth" in imported_modules("fedserver.api")["fedserver.api.ratelimit"]
    assert "fedserver.auth.client_address" in imported_modules("fedserver.api")["fedserver.api.ratelimit"]
