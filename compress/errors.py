"""One exception type for bad user input, so every entry point can print one clear line, and the
input checks every entry point shares."""
from __future__ import annotations

import os
from pathlib import Path


class UserInputError(ValueError):
    """Bad input from the user: a file, a line, an option. Its message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def writable_dir(option: str, path: Path) -> None:
    """A folder that exists or can be made: not a file, nor under one (else the first write would
    fail with another option's name in the message, or after an hour of training)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise UserInputError(f"{option} {path}: {'is' if p == path else f'{p} is'} a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise UserInputError(f"{option} {path}: {p} is not writable")
            return
