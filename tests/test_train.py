"""Training one fold: stages, schedules, callbacks, snapshots, the has-salt head."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kagglesalt import data, plugins
from kagglesalt.model import inference, settings
from kagglesalt.model.batches import Batches, prefetch_workers
from kagglesalt.model.fold import train_fold
from kagglesalt.model.results import FoldJob
from kagglesalt.model.schedule import stage_plan
from kagglesalt.progress import Reporter

EXAMPLES = str(Path(__file__).parent / "plugin_examples")
pytestmark = pytest.mark.backend  # training runs on JAX too (tox -e jax), as on GPUs


def make(**given) -> settings.TrainSettings:
    return settings.resolve({}, given)


def test_batches_are_full_repeatable_and_reshuffled_each_epoch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 101, 101)).astype(np.uint8)
    masks = rng.random((50, 101, 101)) > 0.7
    masks[:10] = False
    chosen = make(batch_size=16, input_size=32, augment={"crop_scale": 0.2})
    a = Batches(images, masks, chosen, seed=1, has_salt_target=True)
    b = Batches(images, masks, chosen, seed=1, has_salt_target=True, workers=1)
    assert len(a) == 3  # 50 // 16: the two left over change with the order
    x, (y, has_salt) = a[2]
    assert x.shape == (16, 32, 32, 1) and y.shape == (16, 32, 32, 1) and has_salt.shape == (16, 1)
    assert np.array_equal(x, b[2][0]) and np.array_equal(y, b[2][1][0])
    assert np.array_equal(has_salt[:, 0], y.reshape(16, -1).max(axis=1))
    a.on_epoch_end()
    assert not np.array_equal(a[2][0], x)


@pytest.mark.parametrize("cpus, workers", [(1, 2), (2, 2), (8, 4), (16, 8), (96, 8)])
def test_augmentation_threads_grow_with_the_cores_a_gpu_machine_has(cpus, workers):
    assert prefetch_workers(cpus) == workers


class Rows(Reporter):
    def __init__(self):
        self.rows = []

    def epoch_end(self, epoch, row):
        self.rows.append(row)


@pytest.fixture(scope="module")
def small(synthetic_master):
    train = data.load_train(synthetic_master)
    return FoldJob(train.images[:80], train.masks[:80], train.images[80:], train.masks[80:])


def test_early_stopping_ends_a_stage_that_no_longer_improves(small):
    spec = plugins.get_model("tiny", EXAMPLES)
    # A rate too small to change anything: the validation score cannot improve.
    chosen = spec.training_settings({"epochs": 12, "patience": 2, "learning_rate": 1e-12})
    rows = Rows()
    result = train_fold(spec, chosen, small, reporter=rows)
    assert len(rows.rows) == 3 and len(result.history) == 3
    assert result.best_epoch == 1 and len(result.models) == 1


def test_the_plateau_schedule_halves_the_rate_when_the_score_stalls(small):
    spec = plugins.get_model("tiny", EXAMPLES)
    chosen = spec.training_settings({"epochs": 5, "patience": 4, "learning_rate": 1e-12,
                                     "schedule": "plateau"})
    rows = Rows()
    train_fold(spec, chosen, small, reporter=rows)
    rates = [row["learning_rate"] for row in rows.rows]
    assert rates[:3] == pytest.approx([1e-12, 1e-12, 5e-13])  # halved after 2 flat epochs


def test_a_fold_with_snapshots_predicts_with_the_mean_of_its_cycle_ends(small, tmp_path,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = plugins.get_model("tiny_head", EXAMPLES)
    chosen = spec.training_settings({"epochs": 6, "loss": "bce+lovasz", "lovasz_share": 0.5,
                                     "schedule": "cosine", "snapshots": 2,
                                     "lovasz": "symmetric"})
    rows = Rows()
    result = train_fold(spec, chosen, dataclasses.replace(small, test_images=small.val_images[:5]),
                        reporter=rows)
    assert list(tmp_path.iterdir()) == []  # a fold is a function: it writes nothing
    assert [row["stage"] for row in rows.rows] == ["bce_dice"] * 3 + ["lovasz"] * 3
    rates = [row["learning_rate"] for row in rows.rows]
    # cycles of 2 and 1 epochs: the rate restarts at the second
    assert rates[3:] == pytest.approx([1.5e-3, 7.575e-4, 1.5e-3], rel=1e-6)
    assert len(result.models) == 2
    import keras

    validated = result.history["val_score"].notna().tolist()
    assert validated == [True] * 6  # validate_every 1
    chosen = spec.training_settings({"epochs": 6, "loss": "bce+lovasz", "lovasz_share": 0.5,
                                     "schedule": "cosine", "snapshots": 2,
                                     "validate_every": 2})
    every_other = train_fold(spec, chosen, small)
    # every second epoch of each stage, and each cycle's end: the BCE stage's one cycle
    # ends at its 3rd epoch, the Lovász stage's two at its 2nd and 3rd
    assert every_other.history["val_score"].notna().tolist() == \
        [False, True, True, False, True, True]

    models = []
    for i, blob in enumerate(result.models):
        path = tmp_path / f"m{i}.keras"
        path.write_bytes(blob)
        models.append(keras.models.load_model(path))
    assert all(len(m.outputs) == 1 for m in models)
    expected = inference.levels(models, small.val_images, 32, "resize", True)
    assert np.array_equal(result.oof, expected)
    one = inference.levels(models[:1], small.val_images, 32, "resize", True)
    assert not np.array_equal(one, expected)
    assert result.test.shape == (5, 101, 101)


def test_mixed_precision_builds_bfloat16_layers_and_leaves_the_global_policy_alone():
    import keras

    from kagglesalt.model.fold import build_models

    spec = plugins.get_model("tiny_head", EXAMPLES)
    model, predictor = build_models(spec, spec.training_settings(
        {"precision": "mixed_bfloat16"}))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].compute_dtype == "bfloat16" and convs[0].variable_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    out = predictor.predict(np.zeros((1, 32, 32, 1), np.float32), verbose=0)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("capabilities, precision", [
    ([], "float32"),  # a CPU
    ([(9, 0)], "mixed_bfloat16"),  # H100, H200
    ([(8, 0), (8, 6)], "mixed_bfloat16"),  # A100, A10
    ([(7, 5), (7, 5)], "mixed_float16"),  # Kaggle's two T4s: no bfloat16
    ([(7, 0)], "mixed_float16"), ([(6, 0)], "mixed_float16"), ([(6, 1)], "mixed_float16"),
    ([(8, 0), (7, 5)], "mixed_float16"),  # the oldest decides
])
def test_auto_precision_follows_the_gpus_compute_capability(capabilities, precision):
    from kagglesalt.model import backend

    assert backend.auto_precision(capabilities) == precision


def test_auto_precision_asks_the_backends_gpus_and_a_given_one_is_kept(monkeypatch):
    from kagglesalt.model import backend

    monkeypatch.setattr(backend, "_backend_capabilities", lambda name: [(7, 5)])
    assert backend.dtype_policy("auto") == "mixed_float16"
    assert backend.dtype_policy("float32") == "float32"
    monkeypatch.undo()
    assert backend.dtype_policy("auto") == "float32"  # this machine: no GPU


def test_mixed_float16_trains_with_a_scaled_loss():
    import keras

    from kagglesalt.model.fold import build_models, training_loss

    spec = plugins.get_model("tiny_head", EXAMPLES)
    settings = spec.training_settings({"precision": "mixed_float16"})
    model, _ = build_models(spec, settings)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  **training_loss(stage_plan(settings)[0], settings, 2))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x = np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32)
    loss = model.train_on_batch(x, (x > 0.5, np.ones((4, 1), np.float32)))
    assert np.isfinite(loss).all()


def test_a_fold_given_too_little_time_trains_the_least_its_recipe_allows(small):
    from kagglesalt.model import budget

    spec = plugins.get_model("tiny_head", EXAMPLES)
    chosen = spec.training_settings({"epochs": 12, "loss": "bce+lovasz", "lovasz_share": 0.5,
                                     "schedule": "cosine", "snapshots": 2})
    rates = budget.Rates({"bce_dice": 500.0, "lovasz": 500.0}, 1000.0, 0.1)
    rows = Rows()
    result = train_fold(spec, chosen, small, reporter=rows,
                        within=budget.FoldBudget(0.001, rates))
    # one epoch of BCE + Dice, then the Lovász stage cut to its first epoch, one snapshot
    assert [row["stage"] for row in rows.rows] == ["bce_dice", "lovasz"]
    assert len(result.models) == 1


def test_a_fold_with_time_to_spare_grows_to_the_most_epochs_given(small):
    from kagglesalt.model import budget

    spec = plugins.get_model("tiny", EXAMPLES)
    chosen = spec.training_settings({"epochs": 2, "schedule": "cosine", "snapshots": 1})
    rates = budget.Rates({"bce": 500.0}, 1000.0, 0.1)

    class Planned(Rows):
        def __init__(self):
            super().__init__()
            self.plans = []

        def fold_epochs(self, fold, epochs, steps):
            self.plans.append(epochs)

    rows = Planned()
    result = train_fold(spec, chosen, small, reporter=rows,
                        within=budget.FoldBudget(3600.0, rates, most_epochs=4))
    assert len(rows.rows) == 4 and rows.plans == [4]
    assert result.history["val_score"].notna().tolist()[-1]  # the last epoch is scored


def test_an_interrupted_fold_goes_on_from_its_last_saved_epoch(small):
    from kagglesalt.model.results import FoldState

    spec = plugins.get_model("tiny_head", EXAMPLES)
    chosen = spec.training_settings({"epochs": 6, "loss": "bce+lovasz", "lovasz_share": 0.5,
                                     "schedule": "cosine", "snapshots": 2})
    whole = Rows()
    train_fold(spec, chosen, small, reporter=whole)

    class Interrupt(Rows):
        def epoch_end(self, epoch, row):
            super().epoch_end(epoch, row)
            if epoch == 5:
                raise KeyboardInterrupt

    saved = []
    with pytest.raises(KeyboardInterrupt):
        train_fold(spec, chosen, small, reporter=Interrupt(), save=saved.append,
                   save_every=0)
    assert [s.done + s.epoch for s in saved] == [1, 2, 3, 4]  # epoch 5 never completed
    state = FoldState.unpack(saved[-1].pack())  # as stored on disk
    rest = Rows()
    result = train_fold(spec, chosen, small, reporter=rest, resume=state)
    assert [row["epoch"] for row in rest.rows] == [5, 6]  # only what was left
    assert list(result.history["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert list(result.history["stage"]) == ["bce_dice"] * 3 + ["lovasz"] * 3
    # the schedule goes on where it was; both snapshots are kept
    assert list(result.history["learning_rate"]) == \
        pytest.approx([row["learning_rate"] for row in whole.rows])
    assert len(result.models) == 2
