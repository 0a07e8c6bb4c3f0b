"""Measure the import graph of the four packages: modules, arrows and upward arrows.

An arrow is one module importing another of ours (``import`` or ``from … import``, at any
depth of the file, once per pair). An arrow is upward when it points from a lower layer to a
higher one: the layers are those of pyproject.toml's import-linter ``layers`` contracts (the
root packages, monitor > alerts > storage > detectors; then monitor's subpackages, top to
bottom). A module of monitor outside every listed subpackage counts as the bottom of monitor.
Alembic's migration scripts (storage.migrations) are left out: they are data, not code.

    python scripts/import_graph.py          # prints the three figures and one line of JSON
    python scripts/import_graph.py --upward # also lists each upward arrow
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "alerts", "storage", "detectors")  # top layer first
LEFT_OUT = "storage.migrations"


def layer_contracts(pyproject: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The root packages' layer order and, per container, its layers (each a list of the
    modules one layer holds), as pyproject.toml's import-linter contracts declare them."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    roots = list(PACKAGES)
    nested: dict[str, list[str]] = {}
    for contract in contracts:
        if contract.get("type") != "layers":
            continue
        for container in contract.get("containers", []):
            nested[container] = list(contract["layers"])
        if not contract.get("containers"):
            roots = [layer.strip() for layer in contract["layers"]]
    return roots, nested


def rank(module: str, roots: Sequence[str], nested: dict[str, list[str]]) -> tuple[int, ...]:
    """A sortable position: smaller is higher (the root package first, then the layer)."""
    root = module.split(".")[0]
    position = [roots.index(root) if root in roots else len(roots)]
    layers = nested.get(root)
    if layers is not None:
        position.append(len(layers))
        for index, layer in enumerate(layers):
            names = [n.strip().lstrip("(").rstrip(")") for n in layer.replace(":", "|").split("|")]
            if any(module == f"{root}.{n}" or module.startswith(f"{root}.{n}.") for n in names):
                position[-1] = index
                break
    return tuple(position)


def measure(root: Path = ROOT) -> dict[str, int | list[str]]:
    sys.path.insert(0, str(root))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = {m for m in graph.modules if m != LEFT_OUT and not m.startswith(LEFT_OUT + ".")}
    roots, nested = layer_contracts(root / "pyproject.toml")
    arrows = sorted(
        (importer, imported)
        for importer in modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported in modules
    )
    upward = [f"{a} -> {b}" for a, b in arrows if rank(a, roots, nested) > rank(b, roots, nested)]
    return {"modules": len(modules), "arrows": len(arrows), "upward": len(upward),
            "upward_arrows": upward}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--upward", action="store_true", help="list the upward arrows")
    args = parser.parse_args(argv)
    figures = measure(args.root.resolve())
    upward = figures.pop("upward_arrows")
    print(f"modules {figures['modules']}, arrows {figures['arrows']}, upward {figures['upward']}")
    if args.upward:
        for arrow in upward:  # type: ignore[union-attr]
            print(f"  upward: {arrow}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
