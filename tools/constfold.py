# Build step of `make mpy`: module constants that are plain integers are written into the code that uses
# them, across modules, so that a board interns no name for them (MicroPython's const() folds within a module only).
"""Whole-program folding of integer module constants for the device build (tools/device.py mpy).

On a board every global name of an `.mpy` module is interned for good (a qstr, ~25 bytes with its
pool entry) and takes a slot in its module's dict; `R.F_P_IMPORT` in another module is a global load
and an attribute load. MicroPython folds `_NAME = const(1)` inside its own module only. This step
finds every module-level `NAME = <int expression>` (const() or not; names in capitals) bound nowhere
else, writes its value where other device modules (or its own) load it, drops it from their imports,
and removes the definition when nothing is left that could still ask for it by name. The source in the repository is
unchanged: CPython, the tests of the library and the frozen build use it as it is.

A constant stays defined (and its loads stay as they are) when it is bound twice or in a function, stored as
an attribute anywhere, reached other than as `A.N` with A a module's own name for its module (`self.N`,
`pkg.mod.N`), named in a string (getattr), imported with `*` or relatively, or used by a file this step
does not rewrite (main.py runs as source on the board).
"""

import ast
import operator
import re

_CONSTANT_NAME = re.compile(r"_?[A-Z][A-Z0-9_]*$")  # how this code base writes its constants

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Mod: operator.mod, ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
           ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.BitXor: operator.xor}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}


def _int_value(node, known):
    """The int an expression of int literals, known constants and const() gives, or None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "const" \
            and len(node.args) == 1 and not node.keywords:
        return _int_value(node.args[0], known)
    if isinstance(node, ast.Constant):
        v = node.value
        return v if type(v) is int else None
    if isinstance(node, ast.Name):
        return known.get(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a = _int_value(node.left, known)
        b = _int_value(node.right, known)
        if a is None or b is None or (type(node.op) is ast.Pow and not 0 <= b <= 64):
            return None
        try:
            return _BINOPS[type(node.op)](a, b)
        except (ArithmeticError, ValueError):
            return None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        a = _int_value(node.operand, known)
        return None if a is None else _UNARY[type(node.op)](a)
    return None


class _Module:
    """One source file: its tree, what it binds where, and which names are other modules."""

    def __init__(self, name, text, rewrite=True):
        self.name = name
        self.tree = ast.parse(text)
        self.rewrite = rewrite
        self.top_assign = {}  # name -> the module-level Assign node binding it (single plain target)
        self.bindings = {}  # name -> how many times it is bound anywhere (assignments, imports, defs, args...)
        self.from_imports = {}  # local name -> (module, name) of a module-level `from M import N [as A]`
        self.module_alias = {}  # local name -> module name (`import M as A`, `from P import S as A` of a module)
        self.attr_stores = set()  # (base name or None, attribute) stored: `A.N = ...`
        self.attr_loads = set()  # (base name or None, attribute) loaded
        self.strings = set()  # every string constant (a name asked for by getattr stays)
        self.loads = set()  # names loaded anywhere
        self.star_imports = set()  # modules imported with `from M import *` (None: a relative one)
        self._scan()

    def _bind(self, name):
        self.bindings[name] = self.bindings.get(name, 0) + 1

    def _scan(self):
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                    and _CONSTANT_NAME.match(stmt.targets[0].id):
                self.top_assign[stmt.targets[0].id] = stmt
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    self.loads.add(node.id)
                else:
                    self._bind(node.id)
            elif isinstance(node, ast.arg):
                self._bind(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self._bind(node.name)
            elif isinstance(node, ast.ImportFrom):  # at any depth: a function's own import counts too
                for alias in node.names:
                    local = alias.asname or alias.name
                    self._bind(local)
                    if node.level == 0 and alias.name != "*":
                        self.from_imports[local] = (node.module, alias.name)
                    elif alias.name == "*":  # every name of that module may be used here
                        self.star_imports.add(node.module if node.level == 0 else None)
                    else:  # a relative import: the name stays wherever it is defined
                        self.attr_loads.add((None, alias.name))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self._bind(alias.asname or alias.name.split(".")[0])
                    if alias.asname:
                        self.module_alias[alias.asname] = alias.name
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self._bind(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                for n in node.names:
                    self._bind(n)
                    self._bind(n)  # (a name declared global is rebound somewhere: never a constant)
            elif isinstance(node, ast.Attribute):
                base = node.value.id if isinstance(node.value, ast.Name) else None
                if isinstance(node.ctx, ast.Load):
                    self.attr_loads.add((base, node.attr))
                else:
                    self.attr_stores.add((base, node.attr))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.strings.add(node.value)


def fold(sources):
    """sources: {module name: (text, rewrite)}, module names as imported ("hanport.reading", "app").
    Returns ({module name: new text} for the rewritten modules, {(module, name): value} folded,
    [(module, name)] of the constants kept as they are)."""
    mods = {name: _Module(name, text, rewrite) for name, (text, rewrite) in sources.items()}
    for m in mods.values():  # `from hanport import reading as R`: R is a module
        for local, (src, n) in list(m.from_imports.items()):
            if "%s.%s" % (src, n) in mods:
                m.module_alias[local] = "%s.%s" % (src, n)
                del m.from_imports[local]

    # constants: (module, name) -> value; a module's own definitions first, then names it imports from
    # another module's constants (re-exports), until nothing more is found
    consts = {}
    changed = True
    while changed:
        changed = False
        for m in mods.values():
            own = {n: v for (mn, n), v in consts.items() if mn == m.name}
            for n, stmt in m.top_assign.items():
                if (m.name, n) in consts or m.bindings.get(n) != 1:
                    continue
                v = _int_value(stmt.value, own)
                if v is not None and type(v) is int:
                    consts[(m.name, n)] = v
                    own[n] = v
                    changed = True
            for local, key in m.from_imports.items():
                if (m.name, local) not in consts and key in consts and m.bindings.get(local) == 1:
                    consts[(m.name, local)] = consts[key]
                    changed = True
    # what stays: stored as an attribute somewhere, named in a string, or used by a file not rewritten
    pinned = set()
    by_name = {}  # constant name -> the modules that define it
    for (mn, n) in consts:
        by_name.setdefault(n, []).append(mn)
    for m in mods.values():
        for base, attr in m.attr_stores | m.attr_loads:
            # `R.N` with R this module's name for the defining module is folded; any other `X.N` (self.N,
            # a module reached another way) keeps N defined everywhere
            if attr in by_name and not (m.bindings.get(base) == 1 and (m.module_alias.get(base), attr) in consts
                                        and (base, attr) not in m.attr_stores):
                for mn in by_name[attr]:
                    pinned.add((mn, attr))
        for (mn, n) in consts:
            if n in m.strings or mn in m.star_imports or None in m.star_imports:
                pinned.add((mn, n))
        if not m.rewrite:
            for key in m.from_imports.values():
                pinned.add(key)
            for target in m.module_alias.values():
                for (mn, n) in consts:
                    if mn == target:
                        pinned.add((mn, n))
    # a pinned re-export keeps what it re-exports
    grew = True
    while grew:
        grew = False
        for m in mods.values():
            for local, key in m.from_imports.items():
                if (m.name, local) in pinned and key in consts and key not in pinned:
                    pinned.add(key)
                    grew = True

    out = {}
    for m in mods.values():
        if m.rewrite:
            _rewrite(m, consts, pinned)
            out[m.name] = ast.unparse(m.tree) + "\n"
    return out, {k: v for k, v in consts.items() if k not in pinned}, sorted(k for k in consts if k in pinned)


class _Folder(ast.NodeTransformer):
    def __init__(self, m, consts, pinned):
        self.m = m
        self.consts = consts
        self.pinned = pinned
        # local name -> value, for the names this module loads that are constants (its own, or imported: fold()
        # made each `from M import N` of a constant a constant of this module too)
        self.names = {n: consts[(m.name, n)] for n in m.loads if (m.name, n) in consts and (m.name, n) not in pinned}
        self.attrs = {}  # (alias, name) -> value: `R.F_P_IMPORT`
        for alias, target in m.module_alias.items():
            if m.bindings.get(alias) != 1:
                continue
            for (mn, n), v in consts.items():
                if mn == target and (mn, n) not in pinned:
                    self.attrs[(alias, n)] = v

    def visit_ImportFrom(self, node):
        if node.level:
            return node
        m = self.m
        keep = []
        for a in node.names:
            key = (m.name, a.asname or a.name)
            if key not in self.consts or key in self.pinned:
                keep.append(a)
        if not keep:  # the module is still imported there, as before (its side effects, its timing), binding no name
            call = ast.Call(func=ast.Name(id="__import__", ctx=ast.Load()), args=[ast.Constant(node.module)],
                            keywords=[])
            return ast.copy_location(ast.Expr(value=call), node)
        node.names = keep
        return node

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.names:
            return ast.copy_location(ast.Constant(self.names[node.id]), node)
        return node

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in self.attrs:
            return ast.copy_location(ast.Constant(self.attrs[(node.value.id, node.attr)]), node)
        self.generic_visit(node)
        return node


def _rewrite(m, consts, pinned):
    folder = _Folder(m, consts, pinned)
    body = []
    for stmt in m.tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            key = (m.name, stmt.targets[0].id)
            if key in consts and key not in pinned:
                continue  # the definition: its value is written where it is used
        body.append(folder.visit(stmt))
    m.tree.body = body or [ast.Pass()]
    ast.fix_missing_locations(m.tree)
