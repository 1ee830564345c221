"""A fold's schedule: its loss stages, cosine cycles and rates, and re-planning it keeps what
is behind it."""

import pytest

from kagglesalt.model.schedule import Stage, replan, stage_plan, validations
from kagglesalt.model.settings import resolve

DEEP = resolve({"loss": "bce+lovasz", "lovasz_share": 0.6, "schedule": "cosine",
                "snapshots": 3, "validate_every": 2, "epochs": 90}, {})


def test_a_plan_re_made_at_the_start_is_a_fresh_plan():
    plan = stage_plan(DEEP)
    assert replan(DEEP, plan, 0, 1, 60) == stage_plan(DEEP, 60)


def test_re_planning_in_the_last_stage_keeps_the_first_and_the_ended_cycles():
    plan = stage_plan(DEEP)  # 36 BCE + 54 Lovász, cycles ending at 18, 36, 54
    longer = replan(DEEP, plan, 1, 25, 36 + 80)
    assert longer[0] == plan[0]
    assert longer[1].epochs == 80 and longer[1].cycle_ends()[0] == 18
    assert len(longer[1].cycle_ends()) == 3 and longer[1].cycle_ends()[-1] == 80
    assert all(end > 25 for end in longer[1].cycle_ends()[1:])
    shorter = replan(DEEP, plan, 1, 25, 36 + 30)
    assert shorter[1].cycle_ends() == [18, 26, 30]  # the cycle in progress ends after 25


def test_cut_to_the_epoch_just_done_the_stage_ends_there_with_a_last_cycle():
    plan = stage_plan(DEEP)
    cut = replan(DEEP, plan, 1, 25, 10)
    assert cut[1].epochs == 25 and cut[1].cycle_ends() == [18, 25]


def test_a_later_stage_keeps_at_least_one_epoch():
    plan = stage_plan(DEEP)
    cut = replan(DEEP, plan, 0, 5, 1)
    assert [s.epochs for s in cut] == [5, 1]


def test_the_cosine_rate_restarts_at_each_cycle_and_ends_at_the_floor():
    stage = Stage("lovasz", 30, 1e-3, 3, (10, 22, 30))
    assert stage.cosine_rate(10) == stage.cosine_rate(22) == stage.cosine_rate(0)
    assert stage.cosine_rate(29) < stage.cosine_rate(23)


def test_validations_are_counted_every_few_epochs_and_at_cycle_ends():
    plan = stage_plan(DEEP)
    # BCE: epochs 2..36 (18); Lovász cycles of 18: every second epoch, 27.
    assert validations(plan, 2) == 18 + 27
    assert validations(plan, 2, (1, 10)) == 27 - 5


def test_a_stage_lengthened_at_its_last_epoch_moves_its_last_cycle_and_adds_none():
    short = resolve({"schedule": "cosine", "snapshots": 1, "epochs": 1}, {})
    longer = replan(short, stage_plan(short), 0, 1, 3)
    assert [s.epochs for s in longer] == [3] and longer[0].cycle_ends() == [3]
    three = resolve({"schedule": "cosine", "snapshots": 3, "epochs": 3}, {})
    grown = replan(three, stage_plan(three), 0, 3, 5)  # cycles ended at 1 and 2 are kept
    assert grown[0].cycle_ends() == [1, 2, 5]


def make(**given):
    return resolve({}, given)


def test_bce_lovasz_gives_the_lovasz_stage_its_share_at_half_the_rate():
    plan = stage_plan(make(loss="bce+lovasz", epochs=100, lovasz_share=0.6,
                           learning_rate=1e-3))
    assert [(s.loss, s.epochs, s.learning_rate) for s in plan] == \
        [("bce_dice", 40, 1e-3), ("lovasz", 60, 5e-4)]
    assert [s.epochs for s in stage_plan(make(loss="bce+lovasz", epochs=30))] == [20, 10]
    assert [s.epochs for s in stage_plan(make(loss="bce+lovasz", epochs=2,
                                              lovasz_share=0.9))] == [1, 1]
    assert [(s.loss, s.epochs) for s in stage_plan(make(loss="bce+lovasz", epochs=1))] == \
        [("bce_dice", 1)]
    assert [(s.loss, s.epochs) for s in stage_plan(make(loss="lovasz", epochs=7))] == \
        [("lovasz", 7)]


def test_snapshots_split_the_last_stage_into_cosine_cycles():
    plan = stage_plan(make(loss="bce+lovasz", epochs=100, lovasz_share=0.6, snapshots=3,
                           schedule="cosine"))
    assert [s.cycles for s in plan] == [1, 3]
    last = plan[-1]
    assert last.cycle_ends() == [20, 40, 60]
    rates = [last.cosine_rate(e) for e in range(60)]
    assert rates[0] == rates[20] == rates[40] == pytest.approx(5e-4)  # restarts
    for start in (0, 20, 40):
        cycle = rates[start:start + 20]
        assert all(a > b for a, b in zip(cycle, cycle[1:], strict=False))
        assert cycle[-1] < 0.05 * 5e-4
    assert min(rates) >= 0.01 * 5e-4


def test_one_cycle_decays_over_the_whole_stage():
    stage = Stage("bce_dice", 10, 1e-2)
    assert stage.cycle_ends() == [10]
    assert stage.cosine_rate(0) == pytest.approx(1e-2)
    assert stage.cosine_rate(5) == pytest.approx(1e-4 + 0.5 * (1e-2 - 1e-4))
