"""The docstring gate: every public definition of stockflow says what it is or does.

Public means what a module exports in `__all__` (every module of the package has one):
its classes and functions, and the public methods and properties of those classes. The
gate is a test rather than ruff's pydocstyle rules (D1xx) because two exemptions need what
only the imported code knows, and without them the gate would ask for the wrong thing:

- pydantic models (the contract's events, the API's bodies and answers) are documented by
  their fields' descriptions, and a class docstring would become the description of the
  published JSON Schema and OpenAPI document: a contract change, not a comment;
- a method that implements a stockflow Protocol (the Observer, the BatchStore, a Decider,
  the OrderWatch, ...) is documented where the protocol declares it, as is a method that
  overrides a documented one of a base class (`logging.Formatter.format`): the same line
  twice would only drift. The protocol's own methods are held to the gate.

`__init__` and other dunders are left to the class docstring, as ruff's D105/D107 would be.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from types import ModuleType

import pydantic

import stockflow


def _modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(stockflow.__path__, "stockflow.")
             if m.name != "stockflow.__main__"]  # runs the CLI when imported
    return [stockflow, *(importlib.import_module(n) for n in sorted(names))]


def _protocols(modules: list[ModuleType]) -> list[type]:
    return [obj for m in modules for obj in vars(m).values()
            if inspect.isclass(obj) and obj.__module__ == m.__name__
            and getattr(obj, "_is_protocol", False) and obj.__name__ != "Protocol"]


def _public_methods(node: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and not n.name.startswith("_")]


def _documented_elsewhere(cls: type, method: str, protocols: list[type]) -> bool:
    for base in cls.__mro__[1:]:
        if base is not object and inspect.getdoc(getattr(base, method, None)) \
                and method in vars(base):
            return True
    for proto in protocols:
        members = {n for n in vars(proto) if not n.startswith("_")}
        if proto is not cls and method in members and all(hasattr(cls, n) for n in members):
            return True
    return False


def _undocumented() -> list[str]:
    modules = _modules()
    protocols = _protocols(modules)
    missing: list[str] = []
    for module in modules:
        exported = set(getattr(module, "__all__", ()))
        source = inspect.getsource(module) if module.__file__ else ""
        where = module.__name__
        for node in ast.parse(source).body:
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) \
                    or node.name not in exported:
                continue
            obj = getattr(module, node.name)
            if isinstance(node, ast.ClassDef) and issubclass(obj, pydantic.BaseModel):
                continue
            if ast.get_docstring(node) is None:
                missing.append(f"{where}.{node.name} (line {node.lineno})")
            if isinstance(node, ast.ClassDef):
                missing.extend(
                    f"{where}.{node.name}.{m.name} (line {m.lineno})"
                    for m in _public_methods(node)
                    if ast.get_docstring(m) is None
                    and not _documented_elsewhere(obj, m.name, protocols))
    return missing


def test_every_module_says_what_it_exports() -> None:
    # the gate reads "public" from __all__, so a module without one would escape it
    assert [m.__name__ for m in _modules()
            if not hasattr(m, "__all__") and not hasattr(m, "__path__")] == []


def test_every_public_definition_has_a_docstring() -> None:
    missing = _undocumented()
    assert missing == [], f"{len(missing)} public definitions without a docstring:\n  " + \
        "\n  ".join(missing)
