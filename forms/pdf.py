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

__all__ = ["ConversionError", "available", "convert", "soffice"]

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
    exe = soffice()
    if exe is None:
        raise ConversionError(f"{source.name}: LibreOffice (soffice) is not installed; cannot make .{extension}")
    target = source.with_suffix(f".{extension}")
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
            str(source),
        ]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ConversionError(f"{source.name}: LibreOffice took longer than {_TIMEOUT} s") from exc
        produced = out / target.name
        if result.returncode != 0 or not produced.exists():
            detail = (result.stderr or result.stdout).strip()[-500:]
            log.error("conversion failed: %s -> .%s: exit %s: %s", source.name, extension, result.returncode, detail)
            raise ConversionError(
                f"{source.name}: LibreOffice could not convert to .{extension}: {detail or 'no output'}"
            )
        tmp = target.with_name(f".tmp-{target.name}")
        shutil.move(str(produced), tmp)
        tmp.replace(target)
    return target
