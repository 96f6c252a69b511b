"The house rules of the package, checked on the exported modules: dependency order, no cycle, tidy imports."
import ast, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT/"lss_nbdev"

def _modules() -> dict:
    "Module name -> (notebook number, parsed source), from each module's `File to edit` header."
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        if p.name.startswith("_"): continue
        src = p.read_text()
        m = re.search(r"File to edit: (?:\.\./)+nbs/(\d+[a-z]?)_", src)
        assert m, f"{p.relative_to(PKG)} does not name the notebook it is exported from"
        out[".".join(p.relative_to(PKG).with_suffix("").parts)] = (m[1], ast.parse(src))
    return out

def _package_from_imports(name:str, tree):
    "(module, names) of every import of a package module anywhere in module `name`: relative of any depth, or absolute; modules dotted from the package root."
    here = name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                if node.module: yield ".".join(base + node.module.split(".")), [a.name for a in node.names]
                else: yield from ((".".join(base + [a.name]), []) for a in node.names)  # `from . import x`
            elif node.module and node.module.startswith("lss_nbdev."): yield node.module.split(".", 1)[1], [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            yield from ((a.name.split(".", 1)[1], []) for a in node.names if a.name.startswith("lss_nbdev."))

def _package_imports(name:str, tree) -> set:
    "Modules of the package that a module imports at any depth (relative or absolute imports)."
    return {m for m, _ in _package_from_imports(name, tree)}

def test_modules_import_only_earlier_notebooks():
    "Dependency order: a module imports only modules of lower notebook numbers, so there is no cycle."
    mods = _modules()
    key = lambda n: (int(re.match(r"\d+", n)[0]), n)
    for name, (num, tree) in mods.items():
        for dep in _package_imports(name, tree) - {name}:
            assert dep in mods, f"{name} imports unknown module {dep}"
            assert key(mods[dep][0]) < key(num), f"{name} (notebook {num}) imports {dep} (notebook {mods[dep][0]})"

def test_no_module_imports_another_modules_private_names():
    "A name that starts with '_' belongs to its module: another module that needs it gets a public name."
    bad = [f"{name} imports {m}.{n}" for name, (_, tree) in _modules().items() for m, ns in _package_from_imports(name, tree)
           for n in ns if n.startswith("_") and m != name]
    assert not bad, bad

def test_no_module_imports_by_name_at_run_time():
    "No `importlib.import_module`: a module that needs another imports it, so the layering test above sees every dependency."
    bad = [name for name, (_, tree) in _modules().items()
           if any(isinstance(n, ast.Attribute) and n.attr == "import_module" for n in ast.walk(tree))]
    assert not bad, bad

def test_imports_are_at_the_top_and_used():
    "ruff: no unused import (F401), no undefined name (F821), no module-level import below code (E402)."
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F401,F821,E402",
                        "--exclude", "_modidx.py", str(PKG)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_plotting_libraries_only_where_figures_are_drawn():
    "matplotlib and seaborn are imported at module level only by the study's figure module; elsewhere inside the drawing function."
    for name, (_, tree) in _modules().items():
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        plotting = {n for n in names if n and n.split(".")[0] in ("matplotlib", "seaborn")}
        assert not plotting or name == "evaluation.study_figures", f"{name} imports {sorted(plotting)} at module level"
