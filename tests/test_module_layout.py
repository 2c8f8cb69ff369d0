"""The house: no import circle among the modules of xpnet, counting the
imports inside functions too (a circle hidden in a function still ties the
modules together), and functions of about 50 lines at most."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xpnet"
CORE = ("checkpoints", "distributed", "network", "serialization", "training", "records")
# Subpackages whose circles are not fixed yet: left out of the package-wide
# circle test (remove a name here once its circles are gone).
CIRCLES_NOT_YET_CHECKED = ()


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """xpnet modules that ``path`` imports anywhere in its body (relative or absolute)."""
    here = module_name(path).split(".") if module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "xpnet":
                target = node.module.split(".")[1:]
            else:
                continue
            found.add(".".join(target))
            found.update(".".join([*target, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "xpnet":
                    found.add(".".join(alias.name.split(".")[1:]))
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the xpnet modules it imports. The package itself (``from .
    import __version__``) is left out: it is initialised before any of its
    modules, whoever imports them."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"}
    return {name: {m for m in imports_of(p) if m in files and m != name} for name, p in files.items()}


def cycle_through(g: dict[str, set[str]], nodes: tuple[str, ...]) -> list[str] | None:
    """A cycle of imports among ``nodes`` (paths may pass through other modules)."""
    for start in nodes:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in g.get(node, ()):
                if nxt == start:
                    return [*path, start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_circle_among_the_training_modules():
    g = graph()
    for name in CORE:
        assert name in g, f"xpnet/{name}.py is missing"
    loop = cycle_through(g, CORE)
    assert loop is None, "import circle: " + " -> ".join(loop)


def checked_modules(g: dict[str, set[str]]) -> tuple[str, ...]:
    """Every module of the package but those under CIRCLES_NOT_YET_CHECKED."""
    skipped = CIRCLES_NOT_YET_CHECKED
    return tuple(sorted(m for m in g if not any(m == s or m.startswith(s + ".") for s in skipped)))


def test_no_import_circle_in_the_package():
    g = graph()
    assert {"cli", "_commands", "layers", "datasets"} <= set(checked_modules(g))
    loop = cycle_through(g, checked_modules(g))
    assert loop is None, "import circle: " + " -> ".join(loop)


def test_records_is_a_leaf():
    assert graph()["records"] == set()


def test_the_cycle_finder_finds_a_cycle():
    assert cycle_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ("a",)) == ["a", "b", "c", "a"]
    assert cycle_through({"a": {"b"}, "b": set()}, ("a", "b")) is None


# Modules whose long functions are not split yet: left out of the length test
# (remove a name here once its functions are short).
LENGTH_NOT_YET_CHECKED = ()


def length_checked_modules() -> list[str]:
    """Every module of the package but those under LENGTH_NOT_YET_CHECKED."""
    names = sorted(graph())
    skipped = LENGTH_NOT_YET_CHECKED
    return [m for m in names if not any(m == s or m.startswith(s + ".") for s in skipped)]


def module_path(name: str) -> Path:
    base = PACKAGE.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


@pytest.mark.parametrize("name", length_checked_modules())
def test_functions_are_short(name):
    tree = ast.parse(module_path(name).read_text())
    long = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body[1:] if ast.get_docstring(node) else node.body
            length = (node.end_lineno - body[0].lineno + 1) if body else 0
            if length > 55:
                long.append(f"{node.name} ({length} lines)")
    assert not long, f"functions longer than about 50 lines in {module_path(name).relative_to(PACKAGE.parent)}: {long}"


def test_the_length_test_reaches_the_command_line_and_the_loop():
    assert {"cli", "_commands", "training", "records", "checkpoints"} <= set(length_checked_modules())


def test_the_package_ships_its_type_hints():
    """PEP 561: without a ``py.typed`` marker in the installed package, type
    checkers ignore every annotation of xpnet (mypy: "missing library stubs
    or py.typed marker") in the code that imports it."""
    assert (PACKAGE / "py.typed").is_file()
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    section = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert any(line.split("=", 1)[0].strip() == '"xpnet"' and '"py.typed"' in line for line in section.splitlines())
