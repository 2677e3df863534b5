"""The house rules, read from the code's own imports: layers point down, pure cores do no I/O.

Top to bottom: the composition root (app factory, server, command line); the features (API,
admin pages, web pages and documents, federation, rewards, storefront); the shared services
(jobs, dispatch, publish, auth, templates, the HTTP client, media, search, accounts, config,
database); the repositories (SQL only); the pure cores. A module may import its own part or
any part below it; a feature may import another feature only along the directions listed in
SIDEWAYS. The pure cores import nothing that does I/O, directly or through other modules.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fedserver", "activities", "rewards", "storefront")

# Parts by module prefix, most specific first: a module belongs to the first part that names it.
PURE = ("activities", "fedserver.signatures", "fedserver.passwords", "fedserver.keys", "fedserver.search.ngrams",
        "fedserver.media.entity", "fedserver.jobs.schedule", "rewards.merkle", "rewards.note", "rewards.checkpoint",
        "rewards.points", "rewards.receipt", "rewards.tiles", "rewards.policy", "rewards.endorse",
        "rewards.ranking")
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("pure", PURE),
    ("repos", ("fedserver.repo", "rewards.store", "rewards.logstore")),
    ("root", ("fedserver.app", "fedserver.server", "fedserver.cli", "fedserver.cli_outbox", "fedserver.cli_backup",
              "fedserver.cli_doctor", "fedserver.__main__",
              "storefront.cli")),
    ("api", ("fedserver.api",)),
    ("admin", ("fedserver.admin",)),
    ("web", ("fedserver.web",)),
    ("federation", ("fedserver.federation",)),
    ("rewards", ("rewards",)),
    ("storefront", ("storefront",)),
    ("shared", ("fedserver",)),
]
LEVEL = {"root": 0, "api": 1, "admin": 1, "web": 1, "federation": 1, "rewards": 1, "storefront": 1, "shared": 2,
         "repos": 3, "pure": 4}
# Features that may use another feature (never the other way round).
SIDEWAYS = {
    ("api", "federation"),  # the client API publishes through the outbox services
    ("web", "federation"),  # a signed GET of a private post is checked against stored keys
    ("web", "rewards"),  # profiles show points from the witnessed log; the instance actor its reward keys
    ("admin", "rewards"),  # administrators resolve rewards alerts
    ("api", "rewards"),  # trends are the open ranking over the witnessed logs, as /discover shows it
    ("api", "storefront"),  # the client API's shop endpoints call the storefront's services
    ("web", "storefront"),  # a profile's shop tab and the front page list the storefront's listings
    ("storefront", "federation"),  # orders tell people by direct message, through the outbox
    ("storefront", "rewards"),
}
# What does I/O (network, database, processes, the event loop); pure cores import none of it.
IO_MODULES = ("aiohttp", "asyncpg", "asyncio", "socket", "ssl", "http.client", "urllib.request", "subprocess",
              "requests", "httpx", "psycopg", "sqlite3", "multiprocessing", "yarl")


def part_of(module: str) -> str | None:
    """The part a project module belongs to (None outside the project)."""
    for part, prefixes in PARTS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return part
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def imports() -> dict[str, set[str]]:
    """Every project module and the modules it imports at run time (type-checking-only imports left out)."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = _module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names: set[str] = set()
            for node in _runtime_nodes(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom):
                    target = _resolve(module, path.name == "__init__.py", node)
                    names.add(target)
                    names.update(f"{target}.{alias.name}" for alias in node.names)
            found[module] = names
    return found


def _runtime_nodes(tree: ast.AST):
    """Import nodes, skipping `if TYPE_CHECKING:` blocks."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            node.body = []
    yield from (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))


def _project_targets(names: set[str]) -> set[str]:
    """The project modules among imported names (`pkg.module.Name` counts as `pkg.module`)."""
    modules = imports()
    out = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def edges() -> list[tuple[str, str]]:
    """(importer, imported) between project modules."""
    return sorted((m, t) for m, names in imports().items() for t in _project_targets(names) if t != m)


def allowed(source: str, target: str) -> bool:
    """Whether `source` may import `target` under the house rules."""
    a, b = part_of(source), part_of(target)
    if a is None or b is None or a == b:
        return True
    if LEVEL[b] > LEVEL[a]:
        return True
    return (a, b) in SIDEWAYS


def test_every_project_module_belongs_to_a_part():
    assert [m for m in imports() if part_of(m) is None] == []


def test_no_import_runs_back_up_a_layer():
    wrong = [f"{a} ({part_of(a)}) -> {b} ({part_of(b)})" for a, b in edges() if not allowed(a, b)]
    assert wrong == []


@pytest.mark.parametrize("source, target", [
    ("fedserver.federation.outbox", "rewards.issue"),  # federation calls no rewards code: rewards hooks in
    ("fedserver.federation.inbox", "fedserver.web.pages"),
    ("fedserver.repo.media", "fedserver.api.limits"),
    ("fedserver.repo.search", "fedserver.search.service"),
    ("fedserver.admin.routes", "fedserver.api.login"),
    ("rewards.web", "fedserver.web.pages"),
    ("activities.parse", "fedserver.repo.actors"),
    ("fedserver.api.statuses", "fedserver.app"),
    ("fedserver.dispatch", "fedserver.federation.outbox"),
])
def test_the_rules_refuse_the_imports_that_ran_back_up(source, target):
    assert not allowed(source, target)


def _closure(module: str) -> set[str]:
    """Everything a module imports, transitively, project modules followed, third-party names kept."""
    seen: set[str] = set()
    todo = [module]
    external: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        names = imports()[current]
        inside = _project_targets(names)
        todo.extend(inside)
        external.update(n for n in names if n.split(".")[0] not in PACKAGES)
    return external


def _does_io(name: str) -> bool:
    return any(name == io or name.startswith(io + ".") for io in IO_MODULES)


@pytest.mark.parametrize("module", sorted(m for m in imports() if part_of(m) == "pure"))
def test_pure_cores_import_nothing_that_does_io(module):
    assert sorted(n for n in _closure(module) if _does_io(n)) == []


def test_the_io_check_would_catch_a_pure_module_importing_the_database():
    assert _does_io("asyncpg") and _does_io("aiohttp.web") and not _does_io("asyncpgx")
    assert any(_does_io(n) for n in _closure("fedserver.repo.actors"))


# Modules that may hold SQL: the repositories, rewards' own store modules, and the database plumbing.
SQL_HOMES = ("fedserver.repo", "rewards.store", "rewards.logstore", "rewards.spend_store", "storefront.store",
             "fedserver.db")
_QUERY_METHODS = {"fetch", "fetchrow", "fetchval", "execute", "executemany"}
_SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "LOCK ", "NOTIFY ", "WITH ")


def _sql_calls(path: Path) -> list[int]:
    """Lines where a query method is called with literal SQL."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _QUERY_METHODS \
                and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr)):
            text = ast.unparse(node.args[0]).upper()
            if any(word in text for word in _SQL_WORDS):
                lines.append(node.lineno)
    return lines


def test_sql_lives_only_in_repositories():
    outside = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = _module_name(path)
            if not any(module == home or module.startswith(home + ".") for home in SQL_HOMES):
                outside += [f"{path.relative_to(ROOT)}:{line}" for line in _sql_calls(path)]
    assert outside == []


def test_the_sql_check_finds_literal_queries():
    assert _sql_calls(ROOT / "fedserver" / "repo" / "actors.py")


@pytest.mark.parametrize("package", ["fedserver.auth", "fedserver.templates", "fedserver.jobs", "fedserver.dispatch",
                                     "fedserver.publish"])
def test_the_shared_layers_import_no_feature_package(package):
    modules = [m for m in imports() if m == package or m.startswith(package + ".")]
    assert modules
    features = {m for m in edges() if m[0] in modules and part_of(m[1]) in ("api", "admin", "web", "federation",
                                                                             "rewards", "storefront")}
    assert features == set()


def test_the_admin_pages_log_in_through_the_shared_auth_and_import_nothing_from_the_api():
    admin = [(a, b) for a, b in edges() if part_of(a) == "admin"]
    assert any(b.startswith("fedserver.auth") for _, b in admin)
    assert [b for _, b in admin if part_of(b) == "api"] == []


def test_the_import_reader_resolves_relative_imports():
    assert "fedserver.auth.login.check_login_form" in imports()["fedserver.auth"]
    assert "fedserver.auth.client_address" in imports()["fedserver.api.ratelimit"]
    assert "fedserver.jobs.schedule.settle" in imports()["fedserver.jobs.worker"]
