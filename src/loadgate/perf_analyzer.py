"""Where the perf_analyzer that the tritonclient wheel ships lives, and how it can run here.

It links `libb64.so.0d` (Debian package libb64-0d) and `libcudart.so.12` (PyPI
nvidia-cuda-runtime-cu12, a dev dependency; no GPU is used). The project's own test and
`bench/generator.py` both use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def perf_analyzer() -> tuple[list[str], dict[str, str]] | str:
    """(command, environment) to run perf_analyzer with, or why it cannot run here."""
    exe = Path(sys.executable).with_name("perf_analyzer")
    if not exe.exists():
        return f"no perf_analyzer beside {sys.executable} (the tritonclient wheel ships it)"
    env = dict(os.environ)
    try:
        import nvidia.cuda_runtime  # libcudart.so.12, which perf_analyzer links; no GPU needed

        lib = Path(next(iter(nvidia.cuda_runtime.__path__))) / "lib"
        env["LD_LIBRARY_PATH"] = f"{lib}:{env.get('LD_LIBRARY_PATH', '')}"
    except ImportError:
        pass
    probe = subprocess.run([exe, "--version"], env=env, capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()[-1]
        hint = " (Debian package libb64-0d)" if "libb64" in reason else ""
        hint += " (PyPI nvidia-cuda-runtime-cu12)" if "libcudart" in reason else ""
        return f"perf_analyzer cannot run here: {reason}{hint}"
    return [str(exe)], env
