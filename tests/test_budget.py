"""Time budgets: the epochs chosen to fit a budget, and a fold that re-plans to stay in it."""

import pytest

from kagglesalt.model import budget, schedule
from kagglesalt.model.settings import resolve

DEEP = {"loss": "bce+lovasz", "lovasz_share": 0.6, "schedule": "cosine", "snapshots": 3,
        "validate_every": 2, "batch_size": 32, "epochs": 90}
PLAIN = {"loss": "bce_dice", "batch_size": 16, "epochs": 30}
SLOW = budget.Rates({"bce_dice": 40.0, "lovasz": 30.0}, predict=150.0, compile=8.0)
FAST = budget.Rates({"bce_dice": 900.0, "lovasz": 700.0}, predict=3000.0, compile=20.0)
WORK = budget.Workload.of_folds(3217, 783, 3)


@pytest.mark.parametrize("recipe", [DEEP, PLAIN])
@pytest.mark.parametrize("rates", [SLOW, FAST])
@pytest.mark.parametrize("minutes", [10, 45, 120])
def test_the_chosen_epochs_are_the_most_that_fit_the_budget(recipe, rates, minutes):
    settings = resolve(recipe, {})
    epochs = budget.choose_epochs(minutes * 60, settings, WORK, 3, rates, 3217)

    def run(e):
        return 3 * budget.fold_seconds(settings, e, WORK, rates) + budget.finish_seconds(3217)

    if epochs == budget.least_epochs(settings):
        assert run(epochs + 1) > minutes * 60
    else:
        assert run(epochs) <= minutes * 60 < run(epochs + 1) or epochs == budget.MAX_EPOCHS


def test_a_budget_too_small_gets_the_least_that_keeps_the_recipe():
    settings = resolve(DEEP, {})
    assert budget.choose_epochs(1, settings, WORK, 3, SLOW, 3217) == 4  # 1 BCE + 3 cycles


def test_a_faster_machine_gets_more_epochs_and_a_cap_holds():
    settings = resolve(PLAIN, {})
    slow = budget.choose_epochs(2700, settings, WORK, 3, SLOW, 3217)
    assert budget.choose_epochs(2700, settings, WORK, 3, FAST, 3217) > slow
    assert budget.choose_epochs(2700, settings, WORK, 3, FAST, 3217, most=40) == 40


def test_the_lovasz_stage_costs_its_own_rate():
    settings = resolve(DEEP, {})
    cheap = budget.Rates({"bce_dice": 40.0, "lovasz": 40.0}, 150.0, 8.0)
    assert budget.fold_seconds(settings, 90, WORK, SLOW) > \
        budget.fold_seconds(settings, 90, WORK, cheap)


def test_a_budget_record_reads_back():
    record = budget.Budget(45.0, 61, SLOW, "CPU x (2 cores)")
    assert budget.Budget.from_config(record.to_config()) == record


class FakeTime:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def simulate(settings, given, slowdown, work=WORK):
    """Trains a fold on a fake clock whose epochs take `slowdown` times the planned time,
    the way train_fold drives the clock. Returns (seconds used, the final stages,
    snapshot epochs)."""
    time = FakeTime()
    clock = budget.FoldClock(given, settings, work, started=0.0, now=time)
    stages = schedule.stage_plan(settings)
    snapshots = []
    number = 0
    while number < len(stages):
        done = 0
        while done < stages[number].epochs:
            stage = stages[number]
            seconds = budget.epoch_seconds(settings, stage, work, given.rates) * slowdown
            time.t += seconds + (given.rates.compile if done == 0 else 0)
            clock.record(stage.loss, seconds + (given.rates.compile if done == 0 else 0),
                         done == 0)
            done += 1
            if done not in stage.cycle_ends()[:-1]:  # as the Pacer does
                stages = clock.replan(stages, number, done)
            if stages[number].validates(done, settings.validate_every):
                scoring = work.valid / given.rates.predict * slowdown
                time.t += scoring
                clock.record_scoring(scoring)
            if number == len(stages) - 1 and done in stages[number].cycle_ends():
                snapshots.append(done)
        number += 1
    models = len(snapshots) if settings.snapshots else 1
    time.t += models * 2 * (work.valid + work.test) / given.rates.predict * slowdown
    return time.t, stages, snapshots


@pytest.mark.parametrize("slowdown", [0.4, 1.0, 2.5])
def test_a_fold_re_plans_to_end_within_its_seconds_whatever_the_measured_speed(slowdown):
    settings = resolve(DEEP, {})
    start = budget.choose_epochs(2400 * 3, settings, WORK, 3, SLOW, 3217)
    settings = resolve(DEEP, {"epochs": start})
    given = budget.FoldBudget(2400.0, SLOW)
    used, stages, snapshots = simulate(settings, given, slowdown)
    assert used <= 2400.0
    assert used >= 0.9 * 2400.0  # the time is used, not left over
    assert len(stages) == 2 and len(snapshots) == 3
    assert snapshots == stages[-1].cycle_ends()


def test_a_fold_that_cannot_fit_trains_the_least_and_stops():
    settings = resolve(DEEP, {"epochs": 40})
    used, stages, snapshots = simulate(settings, budget.FoldBudget(1.0, SLOW), 1.0)
    assert [s.epochs for s in stages][0] == 1 and stages[1].epochs <= 3


def test_growth_stops_at_the_most_epochs_given():
    settings = resolve(PLAIN, {"epochs": 5})
    _, stages, _ = simulate(settings, budget.FoldBudget(1e6, FAST, most_epochs=12), 1.0)
    assert sum(s.epochs for s in stages) == 12
