"""The layering rule of docs/architecture.md, checked against every import in the package
(module level and inside functions): arrows point down, nothing points up.

    top (commands, dashboard)  ->  links | training  ->  core
                               ->  simulation -> links, training, core

Links and training never import each other, the simulation or the top; core imports only core.
"""
from __future__ import annotations

import ast

from tests.conftest import ROOT

CORE = {"capture", "capture.errors", "capture.protocol", "capture.takes", "capture.boards", "capture.device_info",
        "capture.fileio", "capture.units", "capture.resources", "capture.streams", "training", "training.preprocess", "training.postprocess",
        "training.model_dir", "training.tflm_ops"}
TOP_EXTRA = {"gesture_cli", "capture.cli", "capture.device_cli", "capture.importers.cli", "capture.virtual.cli",
             "training.cli", "training.data_cli", "training.export_cli", "training.calibrate_cli",
             "training.push_cli", "training.push"}
# layer -> layers it may import
ALLOWED = {
    "core": {"core"},
    "links": {"links", "core"},
    "training": {"training", "core"},
    "simulation": {"simulation", "links", "training", "core"},
    "top": {"top", "simulation", "links", "training", "core"},
}
PACKAGES = ("capture", "training", "dashboard", "gesture_cli")


def layer(module: str) -> str:
    if module in CORE:
        return "core"
    if module in TOP_EXTRA or module.startswith("dashboard"):
        return "top"
    if module.startswith("capture.virtual") or module in ("training.board_sim", "training.verify", "training.calibrate"):
        return "simulation"
    if module.startswith(("capture.transport", "capture.decoder", "capture.textlines", "capture.recorder",
                          "capture.importers")):
        return "links"
    if module.startswith("training."):
        return "training"
    raise AssertionError(f"{module}: not placed in a layer; add it to tests/test_architecture.py and docs/architecture.md")


def modules() -> dict[str, ast.Module]:
    out = {}
    files = [ROOT / "gesture_cli.py"] + [f for top in PACKAGES[:3] for f in (ROOT / top).rglob("*.py")]
    for f in files:
        parts = f.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(f.read_text(), str(f))
    return out


def imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def test_every_import_points_down():
    wrong = []
    for name, tree in sorted(modules().items()):
        for target in sorted(imports(tree)):
            if layer(target) not in ALLOWED[layer(name)]:
                wrong.append(f"{name} ({layer(name)}) imports {target} ({layer(target)})")
    assert not wrong, "imports against docs/architecture.md's rule:\n" + "\n".join(wrong)


def test_the_rule_catches_an_upward_import():
    tree = ast.parse("def f():\n    from training.board_sim import ClassifierSource\n")
    assert layer("capture.transport.ble") == "links"
    assert "simulation" not in ALLOWED["links"] and imports(tree) == {"training.board_sim"}


def test_architecture_doc_names_every_module():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    missing = [n for n in modules() if n not in ("capture", "training", "dashboard") and
               f"`{n.split('.')[-1]}" not in doc and f"{n.replace('.', '/')}" not in doc]
    assert not missing, f"docs/architecture.md does not mention {missing}"
