"""The apps' imports go one way, `newsletter -> subscribers -> digests`, and never in a circle.

Read from the source (ast), so every import counts: at the top, inside a function, under
`if TYPE_CHECKING:`. A circle held together by an import inside a function is still a circle:
the rule is that a module `tasks.py` imports never imports `tasks.py`.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("digests", "subscribers", "newsletter")
# What each app may not import: the apps that depend on it.
FORBIDDEN = {
    "digests": ("subscribers", "newsletter"),
    "subscribers": ("newsletter",),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module (or name in a module) imported, absolute
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {
        module_name(path): path
        for package in PROJECT
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def absolute_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a `from ... import` reads from, relative levels resolved."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


@functools.cache
def parsed(source: str) -> ast.Module:
    """The source's syntax tree, parsed once per process (two checks read every module)."""
    return ast.parse(source)


def imports_in(source: str, *, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, imported name) of every import in the source, wherever it is in the tree."""
    for node in ast.walk(parsed(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = absolute_base(node, module, is_package)
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


@functools.cache
def project_imports() -> list[Import]:
    found = []
    for module, path in project_files().items():
        is_package = path.name == "__init__.py"
        for line, target in imports_in(path.read_text(), module=module, is_package=is_package):
            found.append(Import(module=module, target=target, path=path, line=line))
    return found


def imported_module(target: str, modules: set[str]) -> str | None:
    """The project module an import loads: the longest known prefix of the imported name
    (`from subscribers.models import Delivery` loads subscribers.models)."""
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    modules = set(project_files())
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for found in project_imports():
        target = imported_module(found.target, modules)
        if target is not None and target != found.module:
            graph[found.module].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(graph[node]):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def cycle_through(start: str, group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One shortest circle from `start` back to it, inside its group."""
    members = set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for after in sorted(graph[node] & members):
            if after == start:
                return [*paths[node], start]
            if after not in paths:
                paths[after] = [*paths[node], after]
                queue.append(after)
    return [start]


def circled_groups(graph: dict[str, set[str]]) -> list[list[str]]:
    return [group for group in strongly_connected(graph) if len(group) > 1]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle of each group of modules that import each other."""
    return [cycle_through(group[0], group, graph) for group in circled_groups(graph)]


# --- The checker reads what it must --------------------------------------------------------------


def test_the_checker_sees_imports_in_functions_type_checking_blocks_and_relative_ones() -> None:
    source = """
from typing import TYPE_CHECKING
from . import views
from .models import Digest
from ..subscribers import tasks

if TYPE_CHECKING:
    from subscribers.models import Delivery

def later():
    import newsletter.celery
    from .tasks import regenerate_section
"""
    found = {name for _, name in imports_in(source, module="digests.admin")}
    assert {
        "digests.views",
        "digests.models.Digest",
        "subscribers.tasks",
        "subscribers.models.Delivery",
        "newsletter.celery",
        "digests.tasks.regenerate_section",
    } <= found
    in_package = {name for _, name in imports_in(source, module="digests", is_package=True)}
    assert "digests.views" in in_package


def test_the_checker_finds_a_circle_held_by_an_import_inside_a_function() -> None:
    graph = {
        "app.tasks": {"app.work"},
        "app.work": {"app.models", "app.tasks"},
        "app.models": set(),
        "app.views": {"app.tasks"},
    }
    assert import_cycles(graph) == [["app.tasks", "app.work", "app.tasks"]]
    graph["app.work"].discard("app.tasks")
    assert import_cycles(graph) == []


# --- The project ---------------------------------------------------------------------------------


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_an_app_never_imports_the_apps_that_depend_on_it(app: str) -> None:
    forbidden = FORBIDDEN[app]
    wrong = [
        str(found)
        for found in project_imports()
        if found.module.split(".")[0] == app and found.target.split(".")[0] in forbidden
    ]
    assert wrong == [], f"{app} may not import {', '.join(forbidden)}:\n" + "\n".join(wrong)


def test_no_project_module_imports_itself_through_others() -> None:
    graph = import_graph()
    found = [
        f"{', '.join(group)} (e.g. {' -> '.join(cycle_through(group[0], group, graph))})"
        for group in circled_groups(graph)
    ]
    assert found == [], "Modules that import each other:\n" + "\n".join(found)


# --- Only tasks.py enqueues -----------------------------------------------------------------------

ENQUEUEING = {"delay", "delay_on_commit", "apply_async"}


def enqueue_calls(source: str) -> list[int]:
    """Lines that enqueue a Celery task (`x.delay(...)`, `x.delay_on_commit(...)`,
    `x.apply_async(...)`)."""
    return [
        node.lineno
        for node in ast.walk(parsed(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ENQUEUEING
    ]


def test_the_enqueue_checker_sees_a_task_queued_in_a_view() -> None:
    assert enqueue_calls("def view(r):\n    send_chunk.delay(1, [2])\n") == [2]
    assert enqueue_calls("x = t.delay_on_commit()\ny = t.apply_async(args=())\n") == [1, 2]
    assert enqueue_calls("def f(): return t.run(1)\n") == []


def test_only_tasks_modules_enqueue() -> None:
    found = {
        f"{name}:{line}"
        for name, path in project_files().items()
        if not name.endswith(".tasks")
        for line in enqueue_calls(path.read_text(encoding="utf-8"))
    }
    assert found == set(), "enqueue through a function of the app's tasks.py instead"
