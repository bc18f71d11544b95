"""flock locks on files that their holders remove as they let go: a training run's
(`train.run_lock`) and a save's (`card.save_model_and_card`). The kernel drops an flock
however its process ends (SIGKILL, an out-of-memory kill, a power cut), so a lock file that
can be locked belongs to no one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def still_names(path: Path, file: IO) -> bool:
    """Whether `path` still names the file open as `file`, checked once it is locked: a holder
    may have removed it and let go after this process opened it, and a lock on a file that is
    no longer there locks nothing that a process opening `path` afterwards finds."""
    try:
        return os.path.samestat(os.fstat(file.fileno()), os.stat(path))
    except FileNotFoundError:
        return False
