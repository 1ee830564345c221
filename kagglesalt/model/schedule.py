"""A fold's training schedule: its loss stages, their cosine cycles, and re-planning them.

Keras-free, so that the time-budget planner can count a plan's epochs and validations
without building a model. A plan is made from the settings for a number of epochs; a fold
trained to a time budget re-plans its remaining epochs as it goes (`replan`), keeping every
stage and cycle already behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kagglesalt.model.settings import LOSS_STAGES, TrainSettings


@dataclass(frozen=True)
class Stage:
    loss: str
    epochs: int
    learning_rate: float
    cycles: int = 1  # cosine cycles; with snapshots, one snapshot at the end of each
    ends: tuple[int, ...] = ()  # the cycles' last epochs when not evenly spread (re-planned)

    def cycle_ends(self) -> list[int]:
        if self.ends:
            return list(self.ends)
        return [int(round(self.epochs * (c + 1) / self.cycles)) for c in range(self.cycles)]

    def cosine_rate(self, epoch: int, floor_share: float = 0.01) -> float:
        """Cosine decay from the stage's rate to 1% of it within each cycle."""
        ends = self.cycle_ends()
        start = max([0] + [end for end in ends if end <= epoch])
        end = min([end for end in ends if end > epoch] or [self.epochs])
        if end <= start:  # past the last cycle (a stage cut short): the floor
            return self.learning_rate * floor_share
        floor = self.learning_rate * floor_share
        return floor + 0.5 * (self.learning_rate - floor) * \
            (1 + math.cos(math.pi * (epoch - start) / (end - start)))

    def validates(self, epoch: int, every: int) -> bool:
        """Whether the held-out images are scored after `epoch` (1-based, in the stage)."""
        return epoch % every == 0 or epoch in self.cycle_ends()


def _lengths(settings: TrainSettings, epochs: int) -> list[tuple[str, int]]:
    names = LOSS_STAGES[settings.loss]
    if len(names) == 1 or epochs < 2:
        return [(names[0], epochs)]
    second = min(epochs - 1, max(1, int(round(epochs * settings.lovasz_share))))
    return [(names[0], epochs - second), (names[1], second)]


def stage_plan(settings: TrainSettings, epochs: int | None = None) -> list[Stage]:
    """The loss stages of a fold of `epochs` (default: the settings'): bce+lovasz gives
    `lovasz_share` of the epochs (at least one, and one less than all) to a Lovász stage
    that starts at half the rate; with snapshots, the last stage runs as that many cosine
    cycles."""
    plan = _lengths(settings, settings.epochs if epochs is None else epochs)
    stages = []
    for number, (loss, length) in enumerate(plan):
        last = number == len(plan) - 1
        cycles = min(settings.snapshots, length) if last and settings.snapshots else 1
        stages.append(Stage(loss, length, settings.learning_rate / 2**number, cycles))
    return stages


def replan(settings: TrainSettings, current: list[Stage], number: int, done: int,
           total: int) -> list[Stage]:
    """The plan for a fold of `total` epochs, made while `done` epochs of stage `number` are
    finished: the stages before it and the cycles already ended stay as they are; the
    current stage is cut or stretched towards where a fresh plan of `total` epochs would end
    it, and the cycles still to come are spread evenly over what is left of it. A total
    too small for what must still happen (one epoch per later stage) is raised to it."""
    fixed = sum(s.epochs for s in current[:number])
    later = len(current) - number - 1
    total = max(total, fixed + done + later)
    fresh = _lengths(settings, total)
    if len(fresh) == len(current):
        wanted = sum(length for _, length in fresh[:number + 1]) - fixed
    else:  # a plan of two stages squeezed to a total where a fresh plan has one
        wanted = total - fixed - later
    length = max(done, min(wanted, total - fixed - later))
    stages = list(current[:number]) + [_resized(current[number], length, done)]
    remaining = total - fixed - length
    for index in range(number + 1, len(current)):
        share = remaining if index == len(current) - 1 else \
            fresh[index][1] if len(fresh) == len(current) else 1
        last = index == len(current) - 1
        cycles = min(settings.snapshots, share) if last and settings.snapshots else 1
        stages.append(Stage(current[index].loss, share, current[index].learning_rate, cycles))
        remaining -= share
    return stages


def _resized(stage: Stage, length: int, done: int) -> Stage:
    """`stage` with `length` epochs, `done` of them behind: ended cycles kept, the cycle in
    progress and those to come spread over the rest (as many as still fit). Cut to `done`,
    the epoch just finished ends the stage's last cycle; a stage whose last cycle was to end
    at `done` and is lengthened goes on with that cycle (no cycle, no snapshot, is added)."""
    ends = stage.cycle_ends()
    passed = [end for end in ends if end < done]
    if length <= done:
        new = passed if passed and passed[-1] == done else passed + [done]
    else:
        start = passed[-1] if passed else 0
        to_come = max(1, min(len(ends) - len(passed), length - done))
        spread = [start + int(round((length - start) * (c + 1) / to_come))
                  for c in range(to_come)]
        if spread[0] <= done:  # the cycle in progress ends after this epoch at the earliest
            rest = to_come - 1
            spread = [done + 1] + [done + 1 + int(round((length - done - 1) * (c + 1) / rest))
                                   for c in range(rest)]
        new = passed + spread
    if new == [int(round(length * (c + 1) / len(new))) for c in range(len(new))]:
        return Stage(stage.loss, length, stage.learning_rate, len(new))
    return Stage(stage.loss, length, stage.learning_rate, len(new), tuple(new))


def validations(stages: list[Stage], every: int, after: tuple[int, int] = (0, 0)) -> int:
    """How many times the held-out images are scored in `stages`, counting only the epochs
    after epoch `after[1]` of stage `after[0]`."""
    count = 0
    for number, stage in enumerate(stages):
        if number < after[0]:
            continue
        first = after[1] + 1 if number == after[0] else 1
        count += sum(stage.validates(e, every) for e in range(first, stage.epochs + 1))
    return count
