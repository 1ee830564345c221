"""The demo's plan: data and epochs fitted to the machine and the time budget."""

import pytest

from kagglesalt import demo
from kagglesalt.model import budget

SLOW = budget.Rates(train={"bce_dice": 40}, predict=150, compile=8)  # an AVX2 laptop
FAST = budget.Rates(train={"bce_dice": 150}, predict=600, compile=2)


@pytest.mark.parametrize("rates", [SLOW, FAST])
@pytest.mark.parametrize("minutes", [2, 5, 15])
def test_the_plan_fits_the_budget(rates, minutes):
    plan = demo.choose(minutes * 60, rates)
    assert plan.seconds <= minutes * 60 or (plan.train, plan.epochs) == (
        demo.TRAIN_SIZES[-1], demo.MIN_EPOCHS)
    assert plan.parts == demo.estimate(plan.train, plan.test, plan.epochs, rates)


def test_a_fast_machine_learns_more_and_a_slow_one_less_but_enough():
    slow, fast = demo.choose(300, SLOW), demo.choose(300, FAST)
    assert fast.train == max(demo.TRAIN_SIZES)
    assert demo.updates(fast.train, fast.epochs) > 2 * demo.GOOD_UPDATES
    assert demo.updates(slow.train, slow.epochs) >= 0.7 * demo.GOOD_UPDATES
    assert slow.train * slow.epochs < fast.train * fast.epochs
    assert demo.choose(600, SLOW).train * demo.choose(600, SLOW).epochs > \
        slow.train * slow.epochs


def test_data_already_present_is_used_as_it_is():
    plan = demo.choose(300, FAST, existing=(3000, 500))
    assert (plan.train, plan.test) == (3000, 500) and plan.parts["data"] == 0


def test_the_demo_bar_passes_every_event_on_and_adds_its_own_parts():
    from kagglesalt.progress import Reporter

    class Seen(Reporter):
        def __init__(self):
            self.calls = []

        def fold_start(self, *args):
            self.calls.append(("fold_start", args))

        def overall(self, description, total):
            self.calls.append(("overall", (description, total)))

        def advance(self, units):
            self.calls.append(("advance", (units,)))

    seen = Seen()
    bar = demo._DemoBar(seen, before=3.0, after=10.0)
    bar.overall("cv demo", 100.0)
    bar.fold_start(0, 2, 5, 7)
    assert seen.calls == [("overall", ("demo", 113.0)), ("advance", (3.0,)),
                          ("fold_start", (0, 2, 5, 7))]
