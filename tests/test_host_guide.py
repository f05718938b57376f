"""The README's host-project guide is what CI runs (scripts/host_project_check.py writes its
marked blocks into a fresh project) and what this suite runs: its host app's files are the
suite's own tests/host/shop, its host test among them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "tests" / "host"


def guide_blocks() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location(
        "host_project_check", ROOT / "scripts" / "host_project_check.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    blocks: dict[str, list[str]] = {}
    for block in script.GUIDE_BLOCK.finditer((ROOT / "README.md").read_text()):
        blocks.setdefault(block["path"], []).append(block["text"])
    return blocks


def test_the_guides_host_app_is_the_suites_and_its_host_test_runs_here():
    blocks = guide_blocks()

    shop = {path: texts for path, texts in blocks.items() if path.startswith("shop/")}
    assert set(shop) == {
        "shop/models.py",
        "shop/receivers.py",
        "shop/apps.py",
        "shop/test_payments.py",
    }
    for path, [text] in shop.items():
        assert text == (HOST / path).read_text(), f"README's {path} differs from tests/host/{path}"


def test_the_guides_python_blocks_compile():
    for path, texts in guide_blocks().items():
        if path.endswith(".py"):
            for text in texts:
                compile(text, path, "exec")
