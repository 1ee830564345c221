"""Records that outlive the code: run folders and ensembles written by earlier versions
still load, and a damaged record is one line naming its file."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from kagglesalt.cli import cli
from kagglesalt.errors import KaggleSaltError
from kagglesalt.workspace import runs, submissions

OLD = Path(__file__).parent / "fixtures" / "workspace-0.1.0"
EXAMPLES = str(Path(__file__).parent / "plugin_examples")


@pytest.fixture
def old(tmp_path) -> Path:
    return Path(shutil.copytree(OLD, tmp_path / "workspace"))


def test_a_run_written_by_version_0_1_0_loads(old):
    run = runs.open_run(old / "runs", "old-run")
    config = run.config
    assert (config.model, config.folds, config.seed) == ("tiny", 2, 42)
    assert config.settings["params"] == {"width": 2} and run.settings().epochs == 1
    assert config.data.train == 12 and config.data.fingerprint
    assert config.budget is None and config.device == ""  # recorded only since
    assert run.finished and run.oof_score == 0.5 and run.threshold == 0.55
    assert run.scores.curve["thresholds"] and run.postprocess().min_area >= 0
    assert [run.fold_summary(k).epochs_run for k in range(2)] == [1, 1]
    assert run.oof().shape == (12, 101, 101)


def test_an_ensemble_and_ledger_written_by_version_0_1_0_load(old):
    record = submissions.read_ensemble(old / "submissions" / "old-ensemble.csv")
    assert record.weights == {"old-run": 1.0} and 0 <= record.oof_score <= 1
    table = submissions.Ledger(old / "submissions").read()
    assert list(table["file"]) == ["old-ensemble.csv"]


def test_the_commands_read_an_old_workspace(old):
    common = ["--data-dir", str(old / "data"), "--runs-dir", str(old / "runs"),
              "--submissions-dir", str(old / "submissions")]
    listed = CliRunner().invoke(cli, [*common, "runs"], terminal_width=200)
    assert listed.exit_code == 0 and "old-run" in listed.output and " done " in listed.output
    predicted = CliRunner().invoke(cli, [*common, "predict", "old-run",
                                         str(old / "data" / "test" / "images"), "--csv",
                                         str(old / "new.csv"), "--plugins-dir", EXAMPLES])
    assert predicted.exit_code == 0, predicted.output
    assert len((old / "new.csv").read_text().splitlines()) == 1 + 4


@pytest.mark.parametrize("damaged", ["config.json", "scores.json"])
def test_a_damaged_run_record_is_one_line_naming_the_file(old, damaged):
    (old / "runs" / "old-run" / damaged).write_text("{not json")
    with pytest.raises(KaggleSaltError, match=f"old-run/{damaged} is damaged"):
        run = runs.open_run(old / "runs", "old-run")
        run.config, run.scores  # noqa: B018
    # the other runs are still listed, the damaged one marked
    shutil.copytree(OLD / "runs" / "old-run", old / "runs" / "intact")
    listed = CliRunner().invoke(cli, ["--runs-dir", str(old / "runs"), "runs"],
                                terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "intact" in listed.output and "is damaged" in listed.output
    assert "Traceback" not in listed.output


def test_the_ledger_keeps_columns_and_rows_it_does_not_know(old):
    path = old / "submissions" / "ledger.csv"
    table = submissions.Ledger(old / "submissions").read()
    table["my_notes"] = ["keep this"]
    table.to_csv(path, index=False)
    submissions.Ledger(old / "submissions").add(file="new.csv", sha256="x")
    text = path.read_text()
    assert "my_notes" in text.splitlines()[0] and "keep this" in text
    assert len(submissions.Ledger(old / "submissions").read()) == 2
