"""The demo: its plan (data and epochs fitted to the machine and the time budget), and the
whole workflow from an empty folder."""

import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import demo
from kagglesalt.cli import cli
from kagglesalt.model import budget

SLOW = budget.Rates(train={"bce_dice": 40}, predict=150, compile=8)  # an AVX2 laptop
FAST = budget.Rates(train={"bce_dice": 150}, predict=600, compile=2)


@pytest.mark.parametrize("rates", [SLOW, FAST])
@pytest.mark.parametrize("minutes", [2, 5, 15])
def test_the_plan_fits_the_budget(rates, minutes):
    plan = demo.choose(minutes * 60, rates)
    assert plan.seconds <= minutes * 60 or (plan.train, plan.epochs) == (
        demo.TRAIN_SIZES[-1], demo.MIN_EPOCHS)
    # Each fold trains its share of the images for every epoch at the measured rate: the
    # training part is at least that, and the plan is the most that fits (one epoch more
    # would not, unless the cap was reached).
    fit = plan.train - plan.train // demo.FOLDS
    assert plan.parts["training"] >= demo.FOLDS * plan.epochs * fit / rates.train["bce_dice"]
    more = demo.estimate(plan.train, plan.test, plan.epochs + 1, rates)
    assert plan.epochs == demo.MAX_EPOCHS or sum(more.values()) > minutes * 60 \
        or plan.train != demo.TRAIN_SIZES[0]


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


def test_the_demo_runs_the_whole_workflow_from_an_empty_folder(tmp_path, monkeypatch):
    from kagglesalt import demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "TRAIN_SIZES", (60,))
    monkeypatch.setattr(demo, "TEST_IMAGES", 12)
    for name in ("MIN_EPOCHS", "MAX_EPOCHS"):
        monkeypatch.setattr(demo, name, 1)
    result = CliRunner().invoke(cli, ["demo", "--minutes", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "generating the embedded default, 60 synthetic training and 12 test" in text
    assert "OOF score" in text and "Test score" in text and "kagglesalt submit" in text
    written = list((tmp_path / "submissions").glob("demo-unet-k2-*.csv"))
    assert len(written) == 1
    table = pd.read_csv(written[0], dtype=str, keep_default_na=False)
    sample = pd.read_csv(tmp_path / "data" / "sample_submission.csv", dtype=str)
    assert list(table["id"]) == list(sample["id"])
