"""Supply chain: no code Attest writes deserialises untrusted bytes with a code-executing loader.

`pickle.load(s)`, `joblib.load`, `torch.load`, `yaml.load` (without SafeLoader), `dill`/`cloudpickle`
loads, `marshal.loads` and `shelve.open` may appear only in the quarantine module, `registry/loader.py`
(which loads skops files with the server's trusted types and refuses pickles). The scan parses every
Python file of the project's packages, scripts and benchmarks (not tests, not the virtualenv, not var/).
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("registry", "governance", "monitoring", "mlops_site", "attest_cli", "bench", "docs")
QUARANTINE = {"registry/loader.py"}
FORBIDDEN = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("joblib", "load"),
             ("torch", "load"), ("dill", "load"), ("dill", "loads"), ("cloudpickle", "load"),
             ("cloudpickle", "loads"), ("marshal", "loads"), ("marshal", "load"), ("shelve", "open"),
             ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load")}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                aliases[name.asname or name.name] = name.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for name in node.names:
                if (node.module.split(".")[0], name.name) in FORBIDDEN:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} from {node.module} import {name.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name):
            module = aliases.get(node.func.value.id, node.func.value.id).split(".")[0]
            if (module, node.func.attr) in FORBIDDEN:
                safe = module == "yaml" and node.func.attr == "load" and any(
                    "Safe" in ast.unparse(arg) for arg in [*node.args[1:], *(k.value for k in node.keywords)])
                if not safe:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {module}.{node.func.attr}(...)")
    return found


def test_no_code_executing_loader_outside_the_quarantine_module():
    files = [p for top in SCANNED if (REPO / top).exists() for p in (REPO / top).rglob("*.py")]
    assert len(files) > 50
    violations = [v for p in files if str(p.relative_to(REPO)) not in QUARANTINE for v in _violations(p)]
    assert violations == [], "code-executing loaders outside registry/loader.py:\n" + "\n".join(violations)


def test_the_scan_finds_what_it_forbids(tmp_path):
    bad = REPO / "var" / "supply_chain_probe.py"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("import pickle as p\nimport yaml\nfrom joblib import load\np.loads(b'')\nyaml.load('a')\n"
                   "yaml.load('a', Loader=yaml.SafeLoader)\n")
    try:
        found = _violations(bad)
    finally:
        bad.unlink()
    assert [v.split(" ", 1)[1] for v in found] == ["from joblib import load", "pickle.loads(...)",
                                                   "yaml.load(...)"]
