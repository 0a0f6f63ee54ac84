"""The package as installed: one import name, every module importable alone, imports flowing one way.

The wheel is built from a copy of the repository (so a stale `build/` cannot leak old modules into
it); each of its modules is then imported in a fresh interpreter with no other leaderwatch module
loaded, which is what catches an import circle that only breaks in one import order. The import
graph is read from the source (module-level imports) to check the layers the package docstrings
promise and that each outside library stays in its one module.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

FOLDERS = {"leaderwatch": "package", "leaderwatch.sources": "sources", "leaderwatch.storage": "storage",
           "leaderwatch.alerts": "alerts", "leaderwatch.bot": "bot"}


def module_files() -> dict[str, Path]:
    """Every module of the package, by dotted name, from the folders the package maps."""
    found: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        root = REPO / folder
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            if package == "leaderwatch" and rel.parts[0] != "__init__" and rel.parts[0] != "__main__":
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


MODULES = module_files()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds, from a clean copy of what the package is made of."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in FOLDERS.values():
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-qq", "--no-build-isolation", "--no-deps",
                    "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    [built] = out.glob("leaderwatch-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        top_level = next((z.read(n).decode() for n in names if n.endswith("top_level.txt")), "leaderwatch\n")
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert tops == {"leaderwatch"}
    assert top_level.split() == ["leaderwatch"]
    assert "leaderwatch = leaderwatch.bot.cli.main:main" in entry_points
    assert {"leaderwatch/py.typed", "leaderwatch/__main__.py", "leaderwatch/sources/data/aliases.csv",
            "leaderwatch/alerts/default_rules.toml"} <= set(names)
    shipped = {n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
               for n in names if n.endswith(".py")}
    assert shipped == set(MODULES), "a package is missing from [tool.setuptools] packages in pyproject.toml"


# What a child interpreter runs: third-party libraries first (they are not what is tested, and
# loading them once keeps this quick), then one fork per module, each importing that module with
# no leaderwatch module loaded: the import order a user's `import leaderwatch.x` meets.
_PROBE = """
import importlib, json, os, selectors, sys, traceback, warnings
warnings.simplefilter("ignore")
for lib in ("aiohttp", "httpx", "sqlite_utils", "yaml", "prometheus_client", "apscheduler", "slack_bolt",
            "slack_sdk", "discord", "matplotlib"):
    importlib.import_module(lib)
assert not [m for m in sys.modules if m.startswith("leaderwatch")]
todo, running, results = list(sys.argv[1:]), {}, {}
chunks = {}
select = selectors.DefaultSelector()
while todo or running:
    while todo and len(running) < (os.cpu_count() or 1) + 1:
        name = todo.pop()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
                message = ""
            except BaseException:
                message = traceback.format_exc()
            os.write(write, message.encode())
            os._exit(0)
        os.close(write)
        running[read] = (pid, name)
        chunks[read] = []
        select.register(read, selectors.EVENT_READ)
    for key, _ in select.select():
        chunk = os.read(key.fd, 65536)
        if chunk:
            chunks[key.fd].append(chunk)
            continue
        select.unregister(key.fd)
        os.close(key.fd)
        pid, name = running.pop(key.fd)
        os.waitpid(pid, 0)
        results[name] = b"".join(chunks.pop(key.fd)).decode()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def imported_alone() -> dict[str, str]:
    """Each module's traceback when imported alone in a fresh interpreter ("" when it imports)."""
    names = sorted(m for m in MODULES if not m.endswith("__main__"))
    done = subprocess.run([sys.executable, "-c", _PROBE, *names], capture_output=True, text=True,
                          timeout=300, check=True)
    results: dict[str, str] = json.loads(done.stdout)
    return results


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_every_module_imports_alone(module: str, imported_alone: dict[str, str]) -> None:
    assert imported_alone[module] == ""


def test_python_dash_m_leaderwatch_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "leaderwatch", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: leaderwatch")


# --- the import graph -------------------------------------------------------------------------------

def _imports(path: Path, name: str) -> Iterator[str]:
    """The modules a module imports when it loads (not those under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                yield from walk(node.orelse)
                continue
            if isinstance(node, ast.Import):
                yield from (a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
                yield base
                for alias in node.names:  # `from leaderwatch.bot import charts` imports a module
                    if f"{base}.{alias.name}" in MODULES:
                        yield f"{base}.{alias.name}"
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        yield from walk(child.body if isinstance(child, ast.ExceptHandler) else [child])

    yield from walk(tree.body)


def _all_imports(path: Path) -> set[str]:
    """Every module a module may import, at load time or later (inside a function)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return found


GRAPH = {name: set(_imports(path, name)) for name, path in MODULES.items()}
"""What each module imports as it loads (what an import circle is made of)."""
USES = {name: _all_imports(path) | GRAPH[name] for name, path in MODULES.items()}
"""What each module imports anywhere, inside functions too (what layers and library rules are about)."""


def _ours(target: str) -> str | None:
    """The module of ours an import names (a package's `__init__` for `from package import x`)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _cycle(nodes: set[str]) -> list[str] | None:
    """One import circle among `nodes`, or None."""
    edges = {n: {t for m in GRAPH[n] if (t := _ours(m)) in nodes and t != n} for n in nodes}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_anywhere() -> None:
    # A package's __init__ importing its own modules (to register them) is not a circle.
    assert _cycle({m for m in MODULES if not m.endswith("__main__")}) is None


LAYERS = ["leaderwatch.sources", "leaderwatch.alerts", "leaderwatch.storage", "leaderwatch.bot"]
"""Bottom to top: a package imports only those below it."""

BOT_LAYERS = [
    ["leaderwatch.bot.settings", "leaderwatch.bot.runtime"],
    ["leaderwatch.bot.charts"],
    ["leaderwatch.bot.commands"],
    ["leaderwatch.bot.pipeline"],
    ["leaderwatch.bot.chat"],
    ["leaderwatch.bot.app"],
    ["leaderwatch.bot.cli"],
]
"""bot's own layers, bottom to top, as bot/__init__.py describes them."""


def _layer(name: str, layers: list[list[str]]) -> int | None:
    for i, prefixes in enumerate(layers):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module: str) -> None:
    targets = {t for m in USES[module] if (t := _ours(m))}
    own = _layer(module, [[p] for p in LAYERS])
    for target in targets:
        theirs = _layer(target, [[p] for p in LAYERS])
        if own is not None and theirs is not None:
            assert theirs <= own, f"{module} imports {target}, a package above it"
    if module.startswith("leaderwatch.bot."):
        level = _layer(module, BOT_LAYERS)
        for target in targets:
            other = _layer(target, BOT_LAYERS)
            if level is not None and other is not None and _layer(module, BOT_LAYERS) != other:
                assert other < level, f"{module} imports {target}, a layer of bot above it"


LIBRARIES = {
    "slack_bolt": {"leaderwatch.bot.chat.slack"},
    "slack_sdk": {"leaderwatch.bot.chat.slack"},
    "discord": {"leaderwatch.bot.chat.discord_bot"},
    "sqlite_utils": {m for m in MODULES if m.startswith("leaderwatch.storage")},
    "apscheduler": {"leaderwatch.bot.app"},
    "matplotlib": {"leaderwatch.bot.charts"},
    "psycopg": {m for m in MODULES if m.startswith("leaderwatch.storage")},
    "psycopg_pool": {m for m in MODULES if m.startswith("leaderwatch.storage")},
    "cryptography": {"leaderwatch.bot.chat.discord_http", "leaderwatch.storage.installations"},
}
"""Each outside library and the only modules that may import it."""


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_each_library_stays_in_its_modules(library: str) -> None:
    users = {m for m, targets in USES.items() if any(t == library or t.startswith(library + ".")
                                                        for t in targets)}
    assert users <= LIBRARIES[library]


def test_the_rules_do_no_io() -> None:
    io = ("httpx", "sqlite_utils", "sqlite3", "aiohttp", "socket", "leaderwatch.sources.http")
    for module, targets in USES.items():
        if module.startswith("leaderwatch.alerts"):
            assert not {t for t in targets if t.startswith(io)}, module


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for name, path in MODULES.items():
        if path.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert len(doc) > 80 and "import" in doc.lower(), f"{name}: what it holds and may import"
