# tools/constfold.py: integer module constants written into the device modules that use them (the build's
# whole-program folding), and every case where a constant must stay defined as it is.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import constfold  # noqa: E402


def _run(modules, rewrite=None):
    """Fold {name: text}; execute the results in dependency order as real modules; return their namespaces."""
    out, folded, kept = constfold.fold({n: (t, rewrite is None or n in rewrite) for n, t in modules.items()})
    return out, folded, kept


def _exec(texts, order, probe):
    """Execute the folded texts as modules (in order); probe(namespaces) runs while they are imported."""
    import types

    saved = dict(sys.modules)
    spaces = {}
    try:
        for name in order:
            mod = types.ModuleType(name)
            sys.modules[name] = mod
            if "." in name:
                parent, child = name.rsplit(".", 1)
                setattr(sys.modules[parent], child, mod)
            exec(compile(texts[name], name, "exec"), mod.__dict__)
            spaces[name] = mod.__dict__
        return probe(spaces)
    finally:
        for n in list(sys.modules):
            if n not in saved:
                del sys.modules[n]


PKG = "def const(x):\n    return x\n"
READING = "from pk.base import const\nF_A = 0\nF_B = const(F_A + 1)\nN = F_B + 1\n_P = const(1 << 4)\n" \
          "def width():\n    return N * _P\n"
USER = ("from pk import reading as R\nfrom pk.reading import F_B, width\n"
        "TABLE = (R.F_A, F_B, R.N)\n"
        "def f():\n    from pk.reading import N\n    return N + width()\n")


def test_constants_are_written_where_used_and_their_names_go():
    mods = {"pk": "", "pk.base": PKG, "pk.reading": READING, "pk.user": USER}
    out, folded, kept = _run(mods)
    assert folded == {("pk.reading", "F_A"): 0, ("pk.reading", "F_B"): 1, ("pk.reading", "N"): 2,
                      ("pk.reading", "_P"): 16, ("pk.user", "F_B"): 1, ("pk.user", "N"): 2}
    assert kept == []
    for name in ("F_A", "F_B", "N", "_P"):
        assert name not in out["pk.reading"]
        assert name not in out["pk.user"]
    assert "TABLE = (0, 1, 2)" in out["pk.user"]
    # the function's own import still imports the module, binding nothing
    assert "__import__('pk.reading')" in out["pk.user"]
    got = _exec(out, ["pk", "pk.base", "pk.reading", "pk.user"],
                lambda sp: (sp["pk.user"]["TABLE"], sp["pk.user"]["f"](), "F_A" in sp["pk.reading"]))
    assert got == ((0, 1, 2), 2 + 32, False)


def test_constants_that_must_stay_stay():
    mods = {
        "pk": "",
        "pk.c": ("A = 1\nB = 2\nB = 3\nC = 4\nD = 5\nE = 6\nG = 7\nH = 8\n"
                 "def f(C=0):\n    return C\n"
                 "def g():\n    global D\n    D = 9\n"),
        "pk.u": ("from pk import c\nimport pk.c\n"
                 "x = getattr(c, 'E')\nc.G = 70\ny = pk.c.H\nz = c.A\n"),
    }
    out, folded, kept = _run(mods)
    assert folded == {("pk.c", "A"): 1}
    # B rebound, C an argument, D declared global: no constants; E named in a string, G stored, H reached
    # another way: constants kept
    assert kept == [("pk.c", "E"), ("pk.c", "G"), ("pk.c", "H")]
    assert "z = 1" in out["pk.u"]
    for name in ("B = 2", "C = 4", "D = 5", "E = 6", "G = 7", "H = 8"):
        assert name in out["pk.c"]
    got = _exec(out, ["pk", "pk.c", "pk.u"], lambda sp: (sp["pk.u"]["x"], sp["pk.u"]["y"], sp["pk.c"]["G"]))
    assert got == (6, 8, 70)


def test_a_file_not_rewritten_keeps_what_it_imports():
    mods = {"pk": "", "pk.c": "A = 1\nB = 2\nC = 3\n", "main": "from pk.c import A\nimport pk.c as K\n",
            "app": "from pk.c import B, C\nv = B + C\nV = 1\n"}
    out, folded, kept = _run(mods, rewrite={"pk", "pk.c", "app"})
    assert "main" not in out
    assert sorted(kept) == [("pk.c", "A"), ("pk.c", "B"), ("pk.c", "C")]  # main imports pk.c whole as K
    # (only names written as constants fold: v stays, V goes)
    assert out["app"].split("\n")[:2] == ["__import__('pk.c')", "v = 2 + 3"] and "V" not in out["app"]


def test_a_name_asked_for_in_a_string_or_on_another_object_stays():
    mods = {"pk": "", "pk.c": "OK = 0\nLIMIT = 9\n",
            "pk.u": "from pk.c import OK, LIMIT\nreason = 'OK'\nclass X:\n    LIMIT = 3\n"
                    "def f(o):\n    return o.LIMIT + LIMIT + OK\n"}
    out, folded, kept = _run(mods)
    assert folded == {}
    assert kept == [("pk.c", "LIMIT"), ("pk.c", "OK"), ("pk.u", "OK")]
    assert out["pk.c"].split() == "OK = 0 LIMIT = 9".split()


def test_the_device_tree_folds_and_loses_only_constant_names():
    import device

    texts = {}
    for src, dst in device.device_files():
        with open(src) as f:
            texts[device.module_name(dst)] = (f.read(), os.path.basename(dst) not in device.SOURCE_ONLY)
    out, folded, kept = constfold.fold(texts)
    assert "main" not in out
    assert len([n for _, n in folded if not n.startswith("_")]) > 150  # names a board no longer interns
    assert ("hanport.reading", "F_P_IMPORT") in folded and ("hanport.accounting", "C_LISTS") in folded
    for name, text in out.items():
        compile(text, name, "exec")


def test_star_and_relative_imports_keep_what_they_may_reach():
    mods = {"pk": "", "pk.c": "A = 1\nB = 2\n", "pk.s": "from pk.c import *\nx = A\n",
            "pk.r": "from .c import B\ny = B\n"}
    out, folded, kept = _run(mods)
    assert folded == {} and kept == [("pk.c", "A"), ("pk.c", "B")]
    assert out["pk.c"].split() == "A = 1 B = 2".split()
