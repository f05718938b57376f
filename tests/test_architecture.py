"""The layering rules of STYLE.md, read from the import statements of every module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PAYMENTS_DIR = REPO_ROOT / "payments"
DARAJA_DIR = PAYMENTS_DIR / "daraja"


def module_name(path: Path) -> str:
    """The dotted module name of a file under the repository root."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Absolute names of every module that ``source`` imports, relative imports resolved.

    ``from x import y`` yields both ``x`` and ``x.y``, since ``y`` may be a submodule.
    """
    # The package a relative import starts from: the module itself for an __init__.py.
    package = module.split(".") if is_package else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                keep = len(package) - node.level + 1
                if keep < 1:
                    raise ValueError(f"relative import beyond the top package in {module}")
                base = package[:keep]
                parent = ".".join([*base, node.module] if node.module else base)
            else:
                parent = node.module or ""
            names.add(parent)
            names.update(f"{parent}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def daraja_violations(imports: set[str]) -> set[str]:
    """Imports forbidden in payments.daraja: Django, and the rest of the payments app."""
    return {
        name
        for name in imports
        if is_within(name, "django")
        or (is_within(name, "payments") and not is_within(name, "payments.daraja"))
    }


def app_violations(imports: set[str]) -> set[str]:
    """Imports forbidden anywhere in payments: the project package."""
    return {name for name in imports if is_within(name, "mpesa_site")}


def python_files(directory: Path) -> Iterator[Path]:
    return (p for p in sorted(directory.rglob("*.py")) if "__pycache__" not in p.parts)


def imports_of(path: Path) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def test_daraja_client_imports_neither_django_nor_the_rest_of_payments():
    found = {
        str(path.relative_to(REPO_ROOT)): bad
        for path in python_files(DARAJA_DIR)
        if (bad := daraja_violations(imports_of(path)))
    }

    assert found == {}


def test_the_statement_parser_imports_neither_django_nor_the_rest_of_payments():
    # Like the Daraja client it may use (payments.daraja.dates, .jsontext), it reads bytes only.
    assert daraja_violations(imports_of(PAYMENTS_DIR / "statement_file.py")) == set()


def test_payments_app_never_imports_the_project():
    found = {
        str(path.relative_to(REPO_ROOT)): bad
        for path in python_files(PAYMENTS_DIR)
        if (bad := app_violations(imports_of(path)))
    }

    assert found == {}


def test_walker_sees_real_imports():
    """Guards against a walker that finds nothing and so passes vacuously."""
    client_imports = imports_of(DARAJA_DIR / "client.py")
    assert "requests" in client_imports
    assert "payments.daraja.config" in client_imports  # from .config import DarajaConfig

    assert len(list(python_files(DARAJA_DIR))) > 5
    assert "django.conf" in imports_of(PAYMENTS_DIR / "conf.py")


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import os.path", "payments.daraja.client", {"os.path"}),
        ("from . import errors", "payments.daraja.client", {"payments.daraja.errors"}),
        ("from .errors import X", "payments.daraja.client", {"payments.daraja.errors"}),
        ("from ..conf import x", "payments.daraja.client", {"payments.conf"}),
        ("from .config import X", "payments.daraja", {"payments.daraja.config"}),
    ],
)
def test_relative_imports_resolve_to_absolute_names(source, module, expected):
    imports = imported_modules(source, module, is_package=module == "payments.daraja")

    assert expected <= imports


@pytest.mark.parametrize(
    "source",
    [
        "from django.conf import settings",
        "import django",
        "from payments.conf import payments_settings",
        "from ..models import Transaction",
        "from .. import gateway",
        "def lazy():\n    from django.core.cache import cache\n",
    ],
)
def test_daraja_rule_flags_a_bad_module(source):
    imports = imported_modules(source, "payments.daraja.client")

    assert daraja_violations(imports)


@pytest.mark.parametrize(
    "source", ["import requests", "from .errors import DarajaError", "import payments.daraja.dates"]
)
def test_daraja_rule_allows_its_own_package_and_third_parties(source):
    imports = imported_modules(source, "payments.daraja.client")

    assert daraja_violations(imports) == set()


@pytest.mark.parametrize(
    "source", ["from mpesa_site import settings", "import mpesa_site.settings"]
)
def test_app_rule_flags_an_import_of_the_project(source):
    assert app_violations(imported_modules(source, "payments.services.stk"))
