"""Conversion with LibreOffice headless (PDF for printing, .xls for the Zhuhai KJDS-001 name).

LibreOffice is optional: ``available()`` says whether it is installed. Each conversion runs
in its own throwaway LibreOffice profile, so concurrent conversions never fight over the
profile lock, and the result is moved into place atomically beside the source.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["ConversionError", "available", "convert", "convert_all", "soffice"]

log = logging.getLogger(__name__)
_TIMEOUT = 180


class ConversionError(RuntimeError):
    """LibreOffice is missing or failed; the message says which file and why."""


def soffice() -> str | None:
    """The LibreOffice executable, if installed (``PORTPAL_SOFFICE`` overrides)."""
    configured = os.environ.get("PORTPAL_SOFFICE")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("soffice") or shutil.which("libreoffice")


def available() -> bool:
    return soffice() is not None


def convert(source: Path, extension: str) -> Path:
    """Convert ``source`` to ``extension`` (pdf, xls ...) next to it; returns the new path."""
    return convert_all([source], extension)[0]


def convert_all(sources: list[Path], extension: str) -> list[Path]:
    """Convert files in one LibreOffice run (its start-up dominates); results sit beside them."""
    exe = soffice()
    names = ", ".join(s.name for s in sources)
    if exe is None:
        raise ConversionError(f"{names}: LibreOffice (soffice) is not installed; cannot make .{extension}")
    targets = [s.with_suffix(f".{extension}") for s in sources]
    if len({t.name for t in targets}) != len(targets):
        raise ConversionError(f"{names}: two sources would convert to the same name")
    with tempfile.TemporaryDirectory(prefix="portpal-lo-") as work:
        profile = Path(work) / "profile"
        out = Path(work) / "out"
        cmd = [
            exe,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            extension,
            "--outdir",
            str(out),
            *(str(s) for s in sources),
        ]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ConversionError(f"{names}: LibreOffice took longer than {_TIMEOUT} s") from exc
        missing = [t.name for t in targets if not (out / t.name).exists()]
        if result.returncode != 0 or missing:
            detail = (result.stderr or result.stdout).strip()[-500:] or "no output"
            log.error("conversion to .%s failed: %s: exit %s: %s", extension, names, result.returncode, detail)
            raise ConversionError(f"{', '.join(missing) or names}: LibreOffice could not convert: {detail}")
        for target in targets:
            tmp = target.with_name(f".tmp-{target.name}")
            shutil.move(str(out / target.name), tmp)
            tmp.replace(target)
    return targets
