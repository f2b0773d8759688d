"""The accuracy floor: absolute, or relative to the fine-tuned teacher (in points)."""
from __future__ import annotations

from dataclasses import dataclass

from compress.errors import UserInputError


@dataclass(frozen=True)
class AccuracyFloor:
    absolute: float | None = None  # e.g. 0.88 (metric units, 0..1)
    below_teacher: float | None = 1.0  # e.g. 1.0 = teacher − 1.0 points

    def __post_init__(self) -> None:
        if self.absolute is not None and not 0.0 <= self.absolute <= 1.0:
            raise UserInputError(f"--floor {self.absolute}: an absolute floor is a fraction between 0 and 1")
        if self.below_teacher is not None and self.below_teacher < 0:
            raise UserInputError(f"--floor-below-teacher {self.below_teacher}: must be zero or more points")

    def threshold(self, teacher_score: float) -> float:
        """The floor in metric units; refuses one that the teacher itself does not meet."""
        if self.absolute is not None:
            if self.absolute > teacher_score:
                raise UserInputError(
                    f"--floor {self.absolute:.4f} is above the teacher's own dev score {teacher_score:.4f}; "
                    "no compressed model can be expected to meet it"
                )
        return self.level(teacher_score)

    def level(self, teacher_score: float) -> float:
        """The floor in metric units, unchecked (e.g. against the teacher's held-out score)."""
        if self.absolute is not None:
            return self.absolute
        return teacher_score - (self.below_teacher or 0.0) / 100.0

    def describe(self) -> str:
        if self.absolute is not None:
            return f"absolute {self.absolute:.4f}"
        return f"teacher − {self.below_teacher:g} points"
