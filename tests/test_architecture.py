"""Imports run one way: no cycles among stemlab's modules, and every import goes down the layers
of docs/architecture.md (analysis never imports view). Read from the source with ``ast``, so
imports inside functions count too."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stemlab"

# bottom-up; a module may import its own layer and the ones below (docs/architecture.md)
LAYERS = [
    ("stemlab", "stemlab.errors", "stemlab.config"),
    ("stemlab.files", "stemlab.http", "stemlab.progress", "stemlab.taxonomy", "stemlab.dsp", "stemlab.rendering",
     "stemlab.mp3", "stemlab.terminal"),
    ("stemlab.download", "stemlab.cache", "stemlab.audio", "stemlab.encode", "stemlab.transcription"),
    ("stemlab.conform", "stemlab.stemset", "stemlab.exports"),
    ("stemlab.providers",),
    ("stemlab.fetching", "stemlab.separation", "stemlab.sandbox", "stemlab.exports.cli", "stemlab.pack"),
    ("stemlab.analysis",),
    ("stemlab.view",),
    ("stemlab.cli", "stemlab.__main__", "stemlab.demo", "stemlab.studies"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


UNRESOLVED: list[str] = []


def _imports(name: str, path: Path) -> set[str]:
    """The stemlab modules ``name`` imports (anywhere in the file)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module.split(".")[0] == "stemlab" and module not in MODULES:
                UNRESOLVED.append(f"{name}: from {module} import ...")
            candidates = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
                          for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate not in MODULES and "." in candidate:
                candidate = candidate.rsplit(".", 1)[0]
            if candidate in MODULES and candidate != name:
                targets.add(candidate)
    return targets


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    best = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = name.startswith(prefix + ".") and prefix != "stemlab"  # the root holds only itself
            if (name == prefix or inside) and (best is None or len(prefix) > best[1]):
                best = (level, len(prefix))
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return best[0]


def test_every_import_names_a_module_that_exists():
    assert UNRESOLVED == []


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    upward = [target for target in GRAPH[name] if _layer(target) > _layer(name)]
    assert upward == [], f"{name} (layer {_layer(name)}) imports higher layers: {upward}"


def test_analysis_imports_nothing_from_view():
    for name, targets in GRAPH.items():
        if name.startswith("stemlab.analysis"):
            assert not [t for t in targets if t.startswith("stemlab.view")], name


def test_no_import_cycles():
    """Tarjan's strongly connected components: every one must be a single module."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_walker_sees_imports_inside_functions():
    """A check that cannot fail is no check: the graph must hold a known function-level import."""
    assert "stemlab.view.report" in GRAPH["stemlab.demo.run"]  # imported inside run_demo()
    assert "stemlab.providers" in GRAPH["stemlab.fetching"]
