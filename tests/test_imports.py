"""Layering: classifier imports neither service nor training; those two never import each other."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "classifier": {"service", "training", "cli", "fastapi"},
    "service": {"training", "cli"},
    "training": {"service", "cli"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_packages_respect_the_layering():
    bad = []
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            hit = _imports(path) & forbidden
            if hit:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, bad


def test_nothing_imports_the_cli():
    for package in ("classifier", "service", "training", "bench"):
        for path in (ROOT / package).rglob("*.py"):
            assert "cli" not in _imports(path), path


def test_classifier_reads_no_environment():
    for path in (ROOT / "classifier").rglob("*.py"):
        assert "os.environ" not in path.read_text(encoding="utf-8"), path
