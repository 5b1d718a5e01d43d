"""The direction of calls, as a test (CONVENTIONS: edges → services/selectors → models).

The import graph of every module of the project — imports inside functions included — is built
by grimp, so a new back-import fails here instead of surviving a review:

- no import cycle between any two modules;
- the layers of an app point one way: models, selectors, services and the other inner modules
  never import an edge (views, APIs, consumers, tasks, admin, URL and routing tables);
- the apps are ordered ``identity < spaces < transcription < sessions_app``: an inner module of
  an app reads a higher app's ``models`` and ``selectors`` at most (a lower layer tells a
  higher one through a declared event: ``transcription/events.py``, ``spaces/access.py``);
- the infrastructure in ``rooms/`` (errors, settings readers, metrics, jobs, logging) imports no
  app.
Edges (and management commands) may call any app's services: that is what edges are for.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
APPS = ("identity", "spaces", "transcription", "sessions_app")
"""Lowest first."""
PACKAGES = ("rooms", *APPS)
EDGES = {
    "views",
    "api",
    "consumers",
    "tasks",
    "admin",
    "urls",
    "routing",
    "webhooks",
    "handlers",
    "apps",
    "finished",
    "forms",
}
"""Module names (last part, or a ``*_api``/``*_views``/``*_admin`` suffix) that are edges."""
INFRA = {
    "errors",
    "env",
    "jobs",
    "metrics",
    "logging_setup",
    "layers",
    "throttles",
    "runtime",
    "llm",
}
READABLE = {"models", "selectors"}


@cache
def graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph(*PACKAGES)


def ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def is_edge(module: str) -> bool:
    parts = module.split(".")
    last = parts[-1]
    return (
        last in EDGES
        or last.endswith(("_api", "_views", "_admin"))
        or "management" in parts
        or "templatetags" in parts
        or "migrations" in parts
    )


def imports(module: str) -> set[str]:
    return {m for m in graph().find_modules_directly_imported_by(module) if ours(m)}


def modules() -> list[str]:
    return sorted(m for m in graph().modules if ours(m))


def cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules():
        if root in index:
            continue
        work = [(root, iter(sorted(imports(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_project() -> None:
    found = set(modules())
    assert {"transcription.models", "sessions_app.services", "rooms.settings"} <= found
    assert "sessions_app.services" in imports("sessions_app.views")


def test_no_import_cycle_between_any_modules() -> None:
    assert cycles() == [], "import cycles (break them with an event or by splitting a module)"


def test_inner_layers_never_import_an_edge() -> None:
    wrong = [
        f"{m} -> {target}"
        for m in modules()
        if not is_edge(m) and m.split(".")[0] in APPS
        for target in imports(m)
        if is_edge(target)
    ]
    assert wrong == []


def test_an_app_reads_only_models_and_selectors_of_the_apps_above_it() -> None:
    wrong = []
    for m in modules():
        app = m.split(".")[0]
        if app not in APPS or is_edge(m):
            continue
        for target in imports(m):
            other = target.split(".")[0]
            if other not in APPS or APPS.index(other) <= APPS.index(app):
                continue
            if target.split(".")[-1] not in READABLE:
                wrong.append(f"{m} -> {target}")
    assert wrong == []


def test_the_infrastructure_imports_no_app() -> None:
    wrong = [
        f"{m} -> {target}"
        for m in modules()
        if m.split(".")[0] == "rooms" and m.split(".")[-1] in INFRA
        for target in imports(m)
        if target.split(".")[0] in APPS
    ]
    assert wrong == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a graph with a known cycle is reported."""
    g = graph()
    g.add_import(importer="rooms.errors", imported="rooms.jobs", line_number=1, line_contents="x")
    g.add_import(importer="rooms.jobs", imported="rooms.errors", line_number=1, line_contents="x")
    try:
        assert ["rooms.errors", "rooms.jobs"] in cycles()
    finally:
        g.remove_import(importer="rooms.errors", imported="rooms.jobs")
        g.remove_import(importer="rooms.jobs", imported="rooms.errors")
