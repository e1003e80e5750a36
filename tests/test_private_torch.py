"""PyTorch's (and CPython's) private names are reached through doors: the analyzer's,
`cnnarch/analysis/torch_internals.py` (tests: `tests/analysis/test_torch_internals.py`), and the
planner's, `cnnarch/planner/torch_internals.py` (for its measurements only), whose tests fail
by name on a release that changed one.

The doors are enforced on the source: every module of cnnarch is parsed, and any private
access outside them fails here, naming the file, the line and the name. Private means: a
module path of torch with a component that starts with an underscore (`torch._C`,
`torch.utils._pytree`), imported or named in a string (`importlib.import_module`); an
attribute whose name starts with one, read off torch or one of its modules; an attribute (or
a `__dict__` key) that PyTorch keeps private on its objects (`module._modules`, `op._schema`,
...); CPython's `ctypes.pythonapi` and `sys._current_frames`.
aten operator names (`aten._softmax`) are not private access: they are the operators' names,
looked up in `torch.ops`, and a missing one fails at import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cnnarch

PACKAGE = Path(cnnarch.__file__).parent
DOOR = PACKAGE / "analysis" / "torch_internals.py"
DOORS = {DOOR, PACKAGE / "planner" / "torch_internals.py"}

# Attributes PyTorch keeps private on its objects (modules, tensors, ops, storages).
PRIVATE_ATTRIBUTES = frozenset(
    {
        "_modules",
        "_parameters",
        "_buffers",
        "_forward_hooks",
        "_forward_pre_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_state_dict_hooks",
        "_load_state_dict_pre_hooks",
        "_non_persistent_buffers_set",
        "_call_impl",
        "_compiled_call_impl",
        "_schema",
        "_overloadpacket",
        "_qualified_op_name",
        "_cdata",
        "_version",
        "_base",
        "_flat_weights",
        "_current_frames",
        "pythonapi",
    }
)
# Private names outside the doors in other packages, each for its owner to move behind a door;
# the list only shrinks (a new private name anywhere fails the test).
KNOWN_ELSEWHERE: frozenset[tuple[str, str]] = frozenset(
    {
        # the trainer tells torch.compile's failures by their exceptions' private modules
        ("train/trainer.py", "torch._dynamo"),
        ("train/trainer.py", "torch._inductor"),
    }
)
# Names under which torch and its modules are imported in cnnarch.
TORCH_NAMES = frozenset({"torch", "F", "nn", "functional"})


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def private_uses(path: Path) -> list[tuple[int, str]]:
    """(line, name) of each private access in one source file."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                parts = module.split(".")
                if parts[0] == "torch" and any(p.startswith("_") for p in parts):
                    found.append((node.lineno, module))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("torch"):
                found += [(node.lineno, a.name) for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Attribute):
            name = node.attr
            dunder = name.startswith("__") and name.endswith("__")
            if name in PRIVATE_ATTRIBUTES or (
                name.startswith("_")
                and not dunder
                and _root(node) in TORCH_NAMES
                and "aten" not in _dotted(node).split(".")
            ):
                found.append((node.lineno, _dotted(node)))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in PRIVATE_ATTRIBUTES
        ):
            found.append((node.lineno, f"[{node.slice.value!r}]"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = node.value.split(".")
            if (
                len(parts) > 1
                and parts[0] == "torch"
                and all(p.isidentifier() for p in parts)
                and any(p.startswith("_") and not p.startswith("__") for p in parts)
            ):
                found.append((node.lineno, node.value))
    return found


def test_the_door_is_the_only_place_that_names_private_torch() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in DOORS:
            continue
        where = path.relative_to(PACKAGE).as_posix()
        offenders += [
            f"{where}:{line}: {name}"
            for line, name in private_uses(path)
            if (where, name) not in KNOWN_ELSEWHERE
        ]
    assert offenders == [], "private PyTorch names outside the doors:\n" + "\n".join(offenders)


def test_the_analyzers_door_imports_nothing_of_cnnarch() -> None:
    # So that any package may use it (the zoo's size search does, through cnnarch.meta).
    tree = ast.parse(DOOR.read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m.startswith("cnnarch")}


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import torch._dynamo", "torch._dynamo"),
        ("from torch.utils._pytree import tree_map", "torch.utils._pytree"),
        ("x = torch._C._DisableTorchDispatch", "torch._C._DisableTorchDispatch"),
        ("m._modules.clear()", "m._modules"),
        ("m.__dict__['_parameters']", "['_parameters']"),
        ("ctypes.pythonapi.PyThreadState_SetAsyncExc", "ctypes.pythonapi"),
        ("F._canonical_mask", "F._canonical_mask"),
        ("importlib.import_module('torch.distributed._tools')", "torch.distributed._tools"),
    ],
)
def test_the_check_catches_each_kind_of_access(tmp_path, source, caught) -> None:
    path = tmp_path / "sample.py"
    path.write_text(source + "\n")
    assert caught in [name for _, name in private_uses(path)]


def test_the_check_lets_public_names_and_operator_names_through(tmp_path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(
        "import torch\naten = torch.ops.aten\nop = aten._softmax.default\n"
        "x = torch.nn.functional.relu\nself._cache = {}\nm.__dict__['forward']\n"
    )
    assert private_uses(path) == []


def test_the_size_search_below_the_zoo_imports_only_the_door() -> None:
    # cnnarch.meta serves the zoo and the analyzer, which may not import each other.
    tree = ast.parse((PACKAGE / "meta.py").read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnarch")
    }
    assert imported == {"cnnarch.analysis.torch_internals"}
