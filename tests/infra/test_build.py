"""`sam build` without Docker produces python3.13 / arm64 artifacts (what `make build` runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fanfare_sync_cli.local.template import PROJECT_ROOT

pytestmark = pytest.mark.slow

ELF_MACHINE_AARCH64 = 0xB7


def sam_cli() -> str:
    candidates = [
        os.environ.get("SAM_CLI"),
        str(PROJECT_ROOT / ".venv-sam" / "bin" / "sam"),
        shutil.which("sam"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip(
        "the SAM CLI is not installed here; `make test` installs it into .venv-sam and runs this test"
    )


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("sam-build")
    sam = sam_cli()
    # The Makefile build method calls `python3`; the SAM virtualenv's has pip, as a fresh machine's may not.
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{Path(sam).parent}{os.pathsep}{os.environ['PATH']}",
    }
    completed = subprocess.run(
        [sam, "build", "--template", "template.yaml", "--build-dir", str(target)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return target


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def test_layer_carries_cp313_aarch64_pydantic_core(build_dir: Path) -> None:
    [binary] = (build_dir / "CommonLayer" / "python" / "pydantic_core").glob("_pydantic_core*.so")
    assert binary.name == "_pydantic_core.cpython-313-aarch64-linux-gnu.so"
    assert elf_machine(binary) == ELF_MACHINE_AARCH64


def test_layer_carries_the_library_and_the_pinned_runtime(build_dir: Path) -> None:
    python = build_dir / "CommonLayer" / "python"
    assert (python / "fanfare_sync" / "logic" / "ingest_webhook.py").is_file()
    assert not list((python / "fanfare_sync").rglob("__pycache__"))
    for distribution in ("aws_lambda_powertools-3.37.0", "boto3-1.44.8", "httpx-0.28.1", "pydantic-2.14.4"):
        assert (python / f"{distribution}.dist-info").is_dir(), distribution


@pytest.mark.parametrize(
    "function",
    [
        "ShopifyWebhookFunction",
        "WooCommerceWebhookFunction",
        "CompleteAdmissionFunction",
        "StaleOrdersFunction",
    ],
)
def test_function_artifact_is_the_handler_alone(build_dir: Path, function: str) -> None:
    assert sorted(p.name for p in (build_dir / function).iterdir()) == ["app.py"]
