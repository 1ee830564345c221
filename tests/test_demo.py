"""The demo's plan: data and epochs fitted to the machine and the time budget."""

import pytest

from kagglesalt import budget, demo

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
