"""Output folders that appear complete or not at all.

A job writes its tables, plots and reports into a hidden folder beside its output folder and
moves them into place only when everything (including registration) has succeeded; a job that
fails removes the hidden folder, so no half-written results are left for someone to trust.
Files already in the output folder (Hydra's ``.hydra/`` and log file) are left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_outputs(output_dir: Path) -> Iterator[Path]:
    """Yield a private folder to write results into; move its contents to ``output_dir`` on success.

    On any exception the private folder is removed and the exception propagates.
    """
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the results are not
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not output_dir.exists():
        os.replace(staging, output_dir)  # one rename: the folder appears whole
        return
    for entry in staging.iterdir():
        target = output_dir / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()
