"""The layers of ``stip_rt`` (docs/architecture.md), checked on the imports of the source tree.

Every ``import`` statement counts: module level, inside functions (lazy imports) and under
``if TYPE_CHECKING:``. A *unit* is a sub-package (``io/``) or a top-level module (``pipeline``).
A unit may import units of its own layer or of lower layers, never of a higher one; the units of
the ``parts`` layer are independent of each other; ``io/``, ``nn/`` and ``track/`` have tighter
rules of their own; and the units import each other without a cycle.

``python tests/test_architecture.py`` prints the ``defaults.yaml`` tree that docs/architecture.md shows.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stip_rt"
DOC = ROOT / "docs" / "architecture.md"

#: Lowest first. A unit may import its own layer and the layers before it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "core",
        frozenset({"errors", "schemas", "types", "geometry", "paths", "config", "checkpoint", "interrupt", "malloc"}),
    ),
    ("parts", frozenset({"io/", "nn/", "track/"})),
    ("engines", frozenset({"runtime/", "models", "model_spec", "weights/", "analysis/"})),
    ("tasks", frozenset({"detect/", "pose/", "eval/", "data/", "train/"})),
    (
        "run",
        frozenset(
            {
                "run_config",
                "run_checks",
                "run_load",
                "pipeline_config",
                "pipeline_build",
                "pipeline_stats",
                "pipeline",
                "pipeline_threads",
                "stages",
                "stage_item",
                "track_feedback",
                "sink_step",
                "pose_batching",
                "live_pacing",
                "batch",
                "batch_video",
                "batch_marker",
                "batch_ray",
                "api",
            }
        ),
    ),
    ("entry", frozenset({"cli/", "__init__"})),
)
#: Layers whose units must not import each other.
INDEPENDENT = frozenset({"parts"})
#: Units that may import only these units (tighter than their layer).
ONLY: Mapping[str, frozenset[str]] = {
    "io/": frozenset({"errors", "types", "schemas"}),  # readers and writers: data types, no models
    "nn/": frozenset({"errors", "checkpoint"}),  # networks know nothing of pose, tracking, io or backends
    "track/": frozenset({"errors", "types", "schemas", "geometry", "config"}),  # no networks, no io
}


def _unit(module: str) -> str:
    """``stip_rt.io.sources`` → ``io/``; ``stip_rt.pipeline`` → ``pipeline``; ``stip_rt`` → ``__init__``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return f"{parts[1]}/" if (PACKAGE / parts[1]).is_dir() else parts[1]


def _is_module(name: str) -> bool:
    """Whether dotted ``name`` is a module or package of this repository."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imported(tree: ast.AST, package: str) -> Iterable[str]:
    """Absolute names of every module ``tree`` imports (``package``: the importing module's package)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, node.module] if node.module else parts)
            for alias in node.names:  # from a import b: b is a module or a name defined in a
                yield f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base


def import_graph(package_dir: Path = PACKAGE) -> dict[str, dict[str, set[str]]]:
    """unit → imported unit → the files (relative paths) with such an import; only ``stip_rt`` and ``apps``."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent)
        module = ".".join(rel.with_suffix("").parts)
        package = module.rpartition(".")[0]
        if path.name == "__init__.py":
            module = package
        unit = _unit(module)
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path)), package):
            top = name.split(".")[0]
            if top == "apps":
                target = "apps"
            elif top == "stip_rt":
                target = _unit(name)
            else:
                continue
            if target != unit:
                graph.setdefault(unit, {}).setdefault(target, set()).add(rel.as_posix())
    return graph


def units(package_dir: Path = PACKAGE) -> set[str]:
    """Every unit of the package: its sub-packages and top-level modules."""
    found = {f"{p.name}/" for p in package_dir.iterdir() if (p / "__init__.py").is_file()}
    found |= {p.stem for p in package_dir.glob("*.py")}
    return found


def violations(graph: Mapping[str, Mapping[str, Iterable[str]]]) -> list[str]:
    """One line per import that breaks a layer rule (empty: the graph follows the layers)."""
    layer_of = {u: i for i, (_, members) in enumerate(LAYERS) for u in members}
    name_of = {i: name for i, (name, _) in enumerate(LAYERS)}
    out = []
    for unit, targets in sorted(graph.items()):
        for target, files in sorted(targets.items()):
            where = ", ".join(sorted(files))
            if target == "apps":
                out.append(f"{unit} imports apps (the applications sit on top of the library): {where}")
                continue
            if unit not in layer_of or target not in layer_of:
                continue  # reported by test_every_unit_has_a_layer
            a, b = layer_of[unit], layer_of[target]
            if b > a:
                out.append(f"{unit} ({name_of[a]}) imports {target} ({name_of[b]}, a higher layer): {where}")
            elif a == b and name_of[a] in INDEPENDENT:
                out.append(f"{unit} imports {target}: the {name_of[a]} layer's units are independent: {where}")
            if unit in ONLY and target not in ONLY[unit]:
                allowed = ", ".join(sorted(ONLY[unit]))
                out.append(f"{unit} imports {target}; it may import only {allowed}: {where}")
    return out


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (import cycles), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def defaults_tree(text: str | None = None) -> str:
    """The branches of ``stip_rt/defaults.yaml`` with their comments and the names of their keys (no values)."""
    if text is None:
        text = (PACKAGE / "defaults.yaml").read_text(encoding="utf-8")
    line_re = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*)(?:#\s?(?P<comment>.*))?$")
    out: list[str] = []
    leaves: list[str] = []
    leaf_indent = ""

    def flush() -> None:
        if leaves:
            lines = textwrap.wrap(" ".join(leaves), width=100 - len(leaf_indent), break_on_hyphens=False)
            out.extend(f"{leaf_indent}{line}" for line in lines)
            leaves.clear()

    for line in text.splitlines():
        m = line_re.match(line)
        if m is None:
            continue
        indent, key, value, comment = m["indent"], m["key"], m["value"].strip(), (m["comment"] or "").strip()
        if value:  # a leaf: only its name
            if leaves and indent != leaf_indent:
                flush()
            leaf_indent = indent
            leaves.append(key)
        else:  # a branch, with its comment
            flush()
            out.append(f"{indent}{key}:  # {comment}" if comment else f"{indent}{key}:")
    flush()
    return "\n".join(out) + "\n"


# -- the real tree ----------------------------------------------------------------------------------


def test_every_unit_has_a_layer() -> None:
    assigned = {u for _, members in LAYERS for u in members}
    missing = sorted(units() - assigned)
    assert not missing, f"units without a layer (add them to LAYERS and docs/architecture.md): {missing}"
    gone = sorted(assigned - units())
    assert not gone, f"LAYERS names units that do not exist: {gone}"


def test_no_import_breaks_a_layer_rule() -> None:
    problems = violations(import_graph())
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_units() -> None:
    graph = {unit: set(targets) for unit, targets in import_graph().items()}
    assert cycles(graph) == []


def test_the_graph_is_read_from_the_source() -> None:
    graph = import_graph()
    assert "errors" in graph["io/"]  # from ..errors import ... (relative)
    assert "checkpoint" in graph["nn/"]
    assert "stip_rt/cli/export.py" in graph["cli/"]["models"]  # a lazy import inside run()


def test_every_kind_of_import_is_seen() -> None:
    code = (
        "import stip_rt.io.sources\n"
        "from stip_rt import geometry\n"
        "from .. import errors\n"
        "from ..detect.base import Detector\n"
        "from . import crops\n"
        "if TYPE_CHECKING:\n    from ..schemas import KeypointSchema\n"
        "def f():\n    from ..models import build_model\n"
    )
    names = set(_imported(ast.parse(code), "stip_rt.pose"))
    assert names == {
        "stip_rt.io.sources",
        "stip_rt.geometry",
        "stip_rt.errors",
        "stip_rt.detect.base",
        "stip_rt.pose.crops",
        "stip_rt.schemas",
        "stip_rt.models",
    }


def test_architecture_doc_lists_every_layer_and_the_defaults_tree() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for name, members in LAYERS:
        row = next((line for line in doc.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, f"docs/architecture.md has no table row for layer '{name}'"
        for unit in members:
            assert f"`{unit}`" in row, f"docs/architecture.md: layer '{name}' does not list `{unit}`"
    assert defaults_tree() in doc, "docs/architecture.md: regenerate the tree with `python tests/test_architecture.py`"


# -- the checks themselves can fail -----------------------------------------------------------------


def test_an_upward_import_is_reported() -> None:
    problems = violations({"nn/": {"pose/": {"stip_rt/nn/x.py"}}})
    assert len(problems) == 2  # a higher layer, and outside nn/'s own list
    assert "nn/ (parts) imports pose/ (tasks, a higher layer): stip_rt/nn/x.py" in problems


def test_imports_between_independent_parts_and_of_apps_are_reported() -> None:
    assert violations({"track/": {"io/": {"t.py"}}})[0].startswith("track/ imports io/: the parts layer")
    assert violations({"pipeline": {"apps": {"p.py"}}})[0].startswith("pipeline imports apps")
    assert violations({"pipeline": {"stages": {"p.py"}, "errors": {"p.py"}}}) == []


def test_io_may_import_only_types_schemas_and_errors() -> None:
    (problem,) = violations({"io/": {"geometry": {"stip_rt/io/x.py"}}})
    assert problem == "io/ imports geometry; it may import only errors, schemas, types: stip_rt/io/x.py"


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_defaults_tree_keeps_branches_and_key_names() -> None:
    text = "a:  # branch a\n  x: 1  # (int) x\n  y: null\n  b:  # sub\n    z: 2\nc:\n  w: [1, 2]  # w\n"
    assert defaults_tree(text) == "a:  # branch a\n  x y\n  b:  # sub\n    z\nc:\n  w\n"


@pytest.mark.parametrize("name", [name for name, _ in LAYERS])
def test_layers_are_disjoint(name: str) -> None:
    members = dict(LAYERS)[name]
    others = set().union(*(m for n, m in LAYERS if n != name))
    assert not members & others


if __name__ == "__main__":
    sys.stdout.write(defaults_tree())
