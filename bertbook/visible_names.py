"""No code a reader cannot see: every name a visible cell uses comes from a visible cell.

``python -m bertbook.visible_names [NOTEBOOK ...]`` (default: every chapter and solution) lists
each name that a visible code cell uses but that no visible cell, import or builtin provides.
Cells tagged ``remove-input``, ``hide-input`` or ``remove-cell`` are hidden in the book: code
copied from the page must run without them. Standard library only (the chapters' authors can
run it with any Python).

The analysis follows Python's scoping rules on the syntax tree, cell after cell:

* a name a cell loads at run time (top level, class bodies, comprehensions) must be bound
  before: earlier in the same cell, or by the latest earlier cell that binds it, which must be
  visible (a hidden cell that rebinds a name the page's code then uses is reported too: the
  page's outputs come from code the reader cannot see);
* a name loaded inside a function or lambda runs later: some visible cell must bind it;
* comprehension variables, parameters, locals, closures and ``global``/``nonlocal`` resolve in
  their own scopes; attributes (``model.encode``) are not names; ``from m import *`` binds the
  public names of ``m`` (imported to list them).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HIDDEN_TAGS = frozenset({"remove-input", "hide-input", "remove-cell"})
# Names a Jupyter kernel provides without an import.
KERNEL_NAMES = frozenset({"display", "get_ipython", "In", "Out", "exit", "quit", "_", "__", "___"})
BUILTINS = frozenset(dir(builtins)) | KERNEL_NAMES
_TIME_MAGIC = re.compile(r"^(\s*)%{1,2}(time|timeit)\b(\s+-\w+(\s+\d+)?)*\s*")


@dataclass
class Scope:
    kind: str  # module, function, class or comprehension
    parent: Scope | None = None
    stores: set[str] = field(default_factory=set)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)

    def binds(self, name: str) -> bool:
        return name in self.stores and name not in self.globals | self.nonlocals


@dataclass
class Event:
    kind: str  # load or store (at module level: loads resolved to the module's namespace)
    name: str
    line: int
    scope: Scope


class _Walker(ast.NodeVisitor):
    """Records every name load and store with its scope, in evaluation order."""

    def __init__(self):
        self.module = Scope("module")
        self.scope = self.module
        self.events: list[Event] = []
        self.star_imports: list[tuple[str, int]] = []

    # -- helpers
    def _store(self, name: str, line: int, scope: Scope | None = None) -> None:
        scope = scope or self.scope
        scope.stores.add(name)
        self.events.append(Event("store", name, line, scope))

    def _load(self, name: str, line: int) -> None:
        self.events.append(Event("load", name, line, self.scope))

    def _in(self, scope: Scope, nodes) -> None:
        outer, self.scope = self.scope, scope
        for node in nodes:
            self.visit(node)
        self.scope = outer

    def _visit_all(self, nodes) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    # -- names
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self._store(node.id, node.lineno)
        else:  # Load, and Del (deleting needs the name bound)
            self._load(node.id, node.lineno)

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.nonlocals.update(node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._store(alias.asname or alias.name.split(".")[0], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                module = "." * node.level + (node.module or "")
                self.star_imports.append((module, node.lineno))
                for name in _public_names(module):
                    self._store(name, node.lineno)
            else:
                self._store(alias.asname or alias.name, node.lineno)

    # -- statements whose parts run in an order other than the fields'
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        self._visit_all(node.targets)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._load(node.target.id, node.lineno)
        self.visit(node.value)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._visit_all([node.annotation, node.value])
        if node.value is not None or not isinstance(node.target, ast.Name):
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        scope = self.scope
        while scope.kind == "comprehension":  # PEP 572: binds in the enclosing scope
            scope = scope.parent
        self._store(node.target.id, node.lineno, scope)

    def visit_For(self, node) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        self._visit_all(node.body + node.orelse)

    visit_AsyncFor = visit_For

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._visit_all([node.type])
        if node.name:
            self._store(node.name, node.lineno)
        self._visit_all(node.body)

    def visit_MatchAs(self, node) -> None:
        self._visit_all([node.pattern])
        if node.name:
            self._store(node.name, node.lineno)

    def visit_MatchStar(self, node) -> None:
        if node.name:
            self._store(node.name, node.lineno)

    def visit_MatchMapping(self, node) -> None:
        self._visit_all(node.keys + node.patterns)
        if node.rest:
            self._store(node.rest, node.lineno)

    # -- new scopes
    def _arguments(self, args: ast.arguments) -> list[str]:
        every = args.posonlyargs + args.args + args.kwonlyargs
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        return [a.arg for a in every]

    def _function(self, node, body) -> None:
        args = node.args
        self._visit_all(getattr(node, "decorator_list", []))
        self._visit_all(args.defaults + [d for d in args.kw_defaults if d is not None])
        if not isinstance(node, ast.Lambda):
            every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
            self._visit_all([a.annotation for a in every if a is not None] + [node.returns])
        scope = Scope("function", self.scope, stores=set(self._arguments(args)))
        self._in(scope, body)
        if not isinstance(node, ast.Lambda):
            self._store(node.name, node.lineno)

    def visit_FunctionDef(self, node) -> None:
        self._function(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all(node.decorator_list + node.bases + node.keywords)
        self._in(Scope("class", self.scope), node.body)
        self._store(node.name, node.lineno)

    def _comprehension(self, node, elements) -> None:
        first, *rest = node.generators
        self.visit(first.iter)  # evaluated in the enclosing scope
        scope = Scope("comprehension", self.scope)
        outer, self.scope = self.scope, scope
        self.visit(first.target)
        self._visit_all(first.ifs)
        for gen in rest:
            self._visit_all([gen.iter, gen.target, *gen.ifs])
        self._visit_all(elements)
        self.scope = outer

    def visit_ListComp(self, node) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])


def _public_names(module: str) -> list[str]:
    try:
        mod = importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 - reported as a finding, not a crash
        raise ValueError(f"cannot list the names of `from {module} import *`: {error}") from error
    names = getattr(mod, "__all__", None)
    return list(names) if names is not None else [n for n in vars(mod) if not n.startswith("_")]


def python_source(source: str) -> str:
    """A cell's source as Python: IPython magics and shell lines become ``pass`` (the code
    after ``%time``/``%timeit``/``%%time`` is kept)."""
    lines = source.split("\n")
    if lines and lines[0].lstrip().startswith("%%"):
        if not _TIME_MAGIC.match(lines[0]):
            return ""  # a cell magic's body is not Python (%%bash, %%html, ...)
        lines = lines[1:]
    out = []
    for line in lines:
        match = _TIME_MAGIC.match(line)
        if match:
            line = match.group(1) + line[match.end() :]
        elif line.lstrip().startswith(("%", "!")):
            line = line[: len(line) - len(line.lstrip())] + "pass"
        out.append(line)
    return "\n".join(out)


@dataclass
class Cell:
    index: int  # position among the notebook's cells, from 0
    hidden: bool
    tags: list[str]
    events: list[Event]
    binds: set[str]  # module-level names the cell binds (anywhere, `global` included)
    error: str | None = None


def analyse(source: str) -> tuple[list[Event], set[str]]:
    tree = ast.parse(python_source(source))
    walker = _Walker()
    walker.visit(tree)
    binds = set(walker.module.stores)
    for event in walker.events:
        scope = event.scope
        if event.kind == "store" and scope is not walker.module and event.name in scope.globals:
            binds.add(event.name)
    return walker.events, binds


def _resolve(event: Event) -> tuple[str, bool] | None:
    """Where a load finds its name: None if in a local or enclosing scope, else ('global',
    deferred) where deferred says whether it runs later (inside a function)."""
    scope, deferred, first = event.scope, False, True
    while scope.kind != "module":
        if event.name in scope.globals:
            break
        if (first or scope.kind != "class") and scope.binds(event.name):
            return None
        if scope.kind == "function" and event.name in scope.nonlocals:
            return None
        deferred = deferred or scope.kind == "function"
        scope, first = scope.parent, False
    return "global", deferred


def read_cells(path: Path) -> list[Cell]:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        tags = cell.get("metadata", {}).get("tags", [])
        hidden = bool(HIDDEN_TAGS & set(tags))
        try:
            events, binds = analyse(source)
            cells.append(Cell(index, hidden, tags, events, binds))
        except (SyntaxError, ValueError) as error:
            cells.append(Cell(index, hidden, tags, [], set(), error=str(error)))
    return cells


def problems(path: Path) -> list[str]:
    """One line per name a visible cell of ``path`` uses that only hidden code (or nothing)
    provides."""
    cells = read_cells(path)
    visible_binds = set().union(*(c.binds for c in cells if not c.hidden))
    hidden_binds = {n: c for c in cells if c.hidden for n in c.binds}
    last: dict[str, Cell] = {}  # the latest cell, so far, that binds each name
    found: list[str] = []

    def where(cell: Cell, line: int) -> str:
        return f"{path} cell {cell.index} line {line}"

    def hidden(cell: Cell) -> str:
        tag = next(t for t in cell.tags if t in HIDDEN_TAGS)
        return f"a hidden cell (cell {cell.index}, {tag})"

    for cell in cells:
        if cell.error and not cell.hidden:
            found.append(f"{path} cell {cell.index}: {cell.error}")
        if not cell.hidden:
            bound_here: set[str] = set()
            reported: set[str] = set()
            for event in cell.events:
                if event.kind == "store":
                    if event.scope.kind == "module" or event.name in event.scope.globals:
                        bound_here.add(event.name)
                    continue
                resolved = _resolve(event)
                name = event.name
                if resolved is None or name in reported:
                    continue
                _, deferred = resolved
                if deferred:
                    if name in visible_binds or name in BUILTINS:
                        continue
                    origin = hidden_binds.get(name)
                    why = f"defined only in {hidden(origin)}" if origin else "defined nowhere"
                    found.append(
                        f"{where(cell, event.line)}: `{name}` (used in a function) is {why}"
                    )
                elif name in bound_here:
                    continue
                elif name in last:
                    if not last[name].hidden:
                        continue
                    earlier = [c for c in cells if c.index < cell.index and not c.hidden]
                    again = any(name in c.binds for c in earlier)
                    verb = "rebound by" if again else "defined only in"
                    found.append(
                        f"{where(cell, event.line)}: `{name}` is {verb} {hidden(last[name])}"
                    )
                elif name not in BUILTINS:
                    found.append(f"{where(cell, event.line)}: `{name}` is not defined before use")
                else:
                    continue
                reported.add(name)
        for name in cell.binds:
            last[name] = cell
    return found


def default_notebooks(root: Path) -> list[Path]:
    return sorted((root / "book").glob("*.ipynb")) + sorted((root / "solutions").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bertbook.visible_names", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or default_notebooks(Path(__file__).resolve().parent.parent)
    found = [line for path in paths for line in problems(path)]
    print("\n".join(found) if found else f"{len(paths)} notebooks: every name is visible")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
