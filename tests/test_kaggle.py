"""The Kaggle commands, with the real `kaggle` client against a local Kaggle-compatible server."""

import os

import pandas as pd
import pytest
from click.testing import CliRunner

from kagglesalt import data
from kagglesalt.cli import cli
from kagglesalt.workspace import submissions
from tests.kaggle_server import competition_zip

COMPETITION = "tgs-salt-identification-challenge"


def kagglesalt(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    result.text = " ".join(result.output.split())  # rich wraps long lines
    return result


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, result.output
    for fragment in fragments:
        assert fragment in error[0], error[0]
    assert "s3cret-key" not in result.output


def leftovers(root):
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- download


def test_download_unpacks_the_competition_into_the_kaggle_layout(server, workspace,
                                                                  synthetic_master):
    result = kagglesalt("download")
    assert result.exit_code == 0, result.output
    assert "Downloaded" in result.text
    for part in ("train.csv", "depths.csv", "sample_submission.csv", "train/images",
                 "train/masks", "test/images"):
        assert (workspace / "data" / part).exists(), part
    assert len(data.load_train(workspace / "data")) == 120
    assert len(data.load_test(workspace / "data")) == 30
    assert server.rpc_calls() == ["ListDataFiles", "DownloadDataFiles"]
    assert leftovers(workspace) == []


def test_a_rerun_with_the_files_present_does_nothing_unless_forced(server):
    assert kagglesalt("download").exit_code == 0
    calls = len(server.requests)
    again = kagglesalt("download")
    assert again.exit_code == 0 and "nothing to do" in again.text
    assert len(server.requests) == calls
    forced = kagglesalt("download", "--force")
    assert forced.exit_code == 0 and len(server.requests) > calls


def test_a_synthetic_data_set_is_replaced_by_the_real_download(server, workspace):
    assert kagglesalt("synth", "--train", "5", "--test", "2").exit_code == 0
    result = kagglesalt("download")
    assert "replacing the synthetic data set" in result.text
    assert len(data.load_train(workspace / "data")) == 120


def test_rules_not_accepted_names_the_rules_page(server, workspace):
    server.status["DownloadDataFiles"] = 403
    one_line_error(kagglesalt("download"), "403", f"kaggle.com/competitions/{COMPETITION}/rules")
    assert not (workspace / "data").exists()


def test_a_refused_key_says_so(server, workspace):
    server.key = "another-key"
    one_line_error(kagglesalt("download"), "refused the credentials (HTTP 401)")


def test_a_server_error_is_one_line(server, workspace):
    server.status["ListDataFiles"] = 500
    one_line_error(kagglesalt("download"), "HTTP 500", "try again")


def test_no_server_at_all_is_one_line(workspace, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    one_line_error(kagglesalt("download"), "could not reach Kaggle")


def test_a_broken_download_leaves_nothing_half_done_and_resumes(server, workspace):
    server.drop_after = len(server.archive) // 2
    one_line_error(kagglesalt("download"), "could not reach Kaggle", "rerun")
    assert not (workspace / "data").exists()
    server.drop_after = None
    result = kagglesalt("download")
    assert result.exit_code == 0, result.output
    resumed_at = int(server.ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(server.archive) // 2  # what had arrived was kept
    assert len(data.load_train(workspace / "data")) == 120
    assert leftovers(workspace) == []


def test_an_archive_entry_escaping_the_folder_is_refused(server, workspace, synthetic_master):
    server.archive = competition_zip(synthetic_master, escape=True)
    server.etag = "escaping"
    one_line_error(kagglesalt("download"), "../escaped.txt", "outside the data folder")
    assert not (workspace / "escaped.txt").exists()
    assert not (workspace / "data").exists()
    assert leftovers(workspace) == []  # the refused archive is not kept


def test_an_archive_of_another_layout_is_refused_and_not_kept(server, workspace):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as other:
        other.writestr("train.csv", "id,rle_mask\n")
    server.archive, server.etag = buffer.getvalue(), "other"
    one_line_error(kagglesalt("download"), "it is not the TGS Salt layout")
    assert leftovers(workspace) == [] and not (workspace / "data").exists()


def test_missing_credentials_say_where_to_put_them(server, workspace):
    (workspace / "home" / ".kaggle" / "kaggle.json").unlink()
    one_line_error(kagglesalt("download"), "no Kaggle credentials", "~/.kaggle/")
    assert server.requests == []


def test_environment_credentials_and_a_bearer_token_work(server, workspace, monkeypatch):
    (workspace / "home" / ".kaggle" / "kaggle.json").unlink()
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token-123")
    assert kagglesalt("download").exit_code == 0
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret-key")
    assert kagglesalt("download", "--force").exit_code == 0


def test_a_kaggle_json_readable_by_others_is_warned_about(server, workspace):
    os.chmod(workspace / "home" / ".kaggle" / "kaggle.json", 0o644)
    result = kagglesalt("download")
    assert result.exit_code == 0
    assert "readable by other users" in result.text and "chmod 600" in result.text


# ---------------------------------------------------------------------------- submit


def write_submission(workspace, name="first.csv", rle="1 5"):
    sample = pd.read_csv(workspace / "data" / "sample_submission.csv", dtype=str)
    path = workspace / "submissions" / name
    path.parent.mkdir(exist_ok=True)
    pd.DataFrame({"id": sample["id"], "rle_mask": rle}).to_csv(path, index=False)
    return path


def test_submit_uploads_and_records_the_submission(server, with_data):
    path = write_submission(with_data)
    result = kagglesalt("submit", "-m", "first try")
    assert result.exit_code == 0, result.output
    assert "Kaggle ref 1000" in result.text
    assert server.rpc_calls() == ["StartSubmissionUpload", "CreateSubmission"]
    assert server.submitted[0]["bytes"] == path.read_bytes()
    assert server.submitted[0]["description"] == "first try"
    row = submissions.Ledger(with_data / "submissions").read().iloc[-1]
    assert row["file"] == "first.csv" and row["kaggle_ref"] == "1000"
    assert row["sha256"] == submissions.sha256(path) and row["message"] == "first try"


@pytest.mark.parametrize("change, problem", [
    (lambda t: t.iloc[1:], "lacks 1 id(s)"),
    (lambda t: t.assign(rle_mask="5 3 1 2"), "not ascending"),
    (lambda t: t.assign(rle_mask="10200 9"), "ends past pixel 10201"),
    (lambda t: t.rename(columns={"rle_mask": "mask"}), "header"),
])
def test_an_invalid_submission_is_refused_before_any_request(server, with_data, change,
                                                             problem):
    path = write_submission(with_data)
    change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
    one_line_error(kagglesalt("submit", str(path), "-m", "bad"), problem)
    assert server.requests == []


def test_the_same_file_is_not_submitted_twice_unless_forced(server, with_data):
    write_submission(with_data)
    assert kagglesalt("submit", "-m", "once").exit_code == 0
    one_line_error(kagglesalt("submit", "-m", "twice"), "already submitted", "--force")
    assert len(server.submitted) == 1
    assert kagglesalt("submit", "-m", "twice", "--force").exit_code == 0
    assert len(server.submitted) == 2


def test_a_failed_upload_reported_as_ref_0_is_an_error(server, with_data):
    write_submission(with_data)
    server.upload_status = 500
    one_line_error(kagglesalt("submit", "-m", "lost"), "did not accept the upload",
                   "nothing was submitted")
    table = submissions.Ledger(with_data / "submissions").read()
    assert (table["kaggle_ref"] == "").all()


def test_submissions_lists_scores_and_writes_them_into_the_ledger(server, with_data):
    write_submission(with_data)
    assert kagglesalt("submit", "-m", "scored").exit_code == 0
    result = kagglesalt("submissions")
    assert result.exit_code == 0, result.output
    assert "scored" in result.output and "0.80100" in result.output
    assert "complete" in result.output
    row = submissions.Ledger(with_data / "submissions").read().iloc[-1]
    assert row["public_score"] == "0.80100" and row["private_score"] == "0.79900"
    assert row["status"] == "complete"


def test_a_submission_made_from_synthetic_data_is_refused_unless_forced(server, workspace,
                                                                         synthetic_master):
    import shutil

    shutil.copytree(synthetic_master, workspace / "data")
    write_submission(workspace)
    one_line_error(kagglesalt("submit", "-m", "demo"), "made from the synthetic data set",
                   "kagglesalt download", "--force")
    assert server.requests == []
    assert kagglesalt("submit", "-m", "demo", "--force").exit_code == 0
    assert len(server.submitted) == 1


def test_an_ensemble_record_of_synthetic_data_refuses_its_file_on_real_data(server, with_data):

    path = write_submission(with_data)
    submissions.write_ensemble(path, submissions.EnsembleRecord(
        path.name, [], 0.7, 0.5, 0.7, {}, "now", {}, data_source="synthetic"))
    one_line_error(kagglesalt("submit", "-m", "old demo"), "made from the synthetic data set")
    assert server.requests == []


def test_a_second_submit_while_one_is_under_way_is_refused_and_sends_nothing(server,
                                                                             with_data,
                                                                             monkeypatch):
    import subprocess
    import sys

    from kagglesalt.workspace import locks

    monkeypatch.setattr(locks, "SHORT_WAIT", 1.0)  # it waits that long, then says who

    write_submission(with_data)
    hold = ("import sys, time\nfrom kagglesalt.workspace import locks\n"
            "with locks.holding(sys.argv[1], 'it'):\n    print('holding', flush=True)\n"
            "    time.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", hold, str(with_data / "submissions")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "holding"
        one_line_error(kagglesalt("submit", "-m", "at once"),
                       "the submissions folder is still being written by process")
        assert server.requests == []
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("reached_kaggle", [True, False])
def test_a_submit_cut_short_is_a_journal_row_that_submissions_resolves(server, with_data,
                                                                       monkeypatch,
                                                                       reached_kaggle):
    from kagglesalt import kaggle

    path = write_submission(with_data)
    real_submit = kaggle.submit

    def killed(*args, **kwargs):
        if reached_kaggle:
            real_submit(*args, **kwargs)
        raise KeyboardInterrupt  # the process dies before the ledger is completed

    monkeypatch.setattr(kaggle, "submit", killed)
    assert kagglesalt("submit", "-m", "cut short").exit_code == 130
    row = submissions.Ledger(with_data / "submissions").read().iloc[-1]
    assert (row["file"], row["status"], row["kaggle_ref"]) == (path.name, "uploading", "")
    monkeypatch.setattr(kaggle, "submit", real_submit)
    one_line_error(kagglesalt("submit", "-m", "again"), "was cut short",
                   "kagglesalt submissions")
    assert kagglesalt("submissions").exit_code == 0
    row = submissions.Ledger(with_data / "submissions").read().iloc[-1]
    if reached_kaggle:
        assert row["kaggle_ref"] == "1000" and row["status"] == "complete"
        one_line_error(kagglesalt("submit", "-m", "again"), "was already submitted")
    else:
        assert row["kaggle_ref"] == "" and row["status"] == "not uploaded"
        assert kagglesalt("submit", "-m", "again").exit_code == 0
    assert len(server.submitted) == 1


def test_a_damaged_archive_is_one_line_and_the_next_download_fetches_it_again(
        server, workspace, archive):
    server.archive = archive[: len(archive) // 2] + b"\0" * (len(archive) - len(archive) // 2)
    server.etag = "damaged"
    one_line_error(kagglesalt("download"), "archive of", "is damaged",
                   "run `kagglesalt download` again")
    server.archive, server.etag = archive, "whole"
    assert kagglesalt("download").exit_code == 0
    assert (workspace / "data" / "train.csv").exists()


def test_the_data_folder_gets_the_permissions_of_the_umask_not_0700(server, workspace):
    import stat

    old = os.umask(0o022)
    try:
        assert kagglesalt("download").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((workspace / "data").stat().st_mode) == 0o755


def test_a_damaged_zip_inside_the_archive_is_one_line(server, workspace, archive):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as whole, \
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as damaged:
        for entry in whole.infolist():
            content = whole.read(entry)
            damaged.writestr(entry, content[:100] if entry.filename == "train.zip" else content)
    server.archive, server.etag = buffer.getvalue(), "nested"
    one_line_error(kagglesalt("download"), "is damaged", "run `kagglesalt download` again")


def test_an_upload_kaggle_recorded_whose_answer_was_lost_is_never_sent_twice(server,
                                                                            with_data):
    path = write_submission(with_data)
    server.fail_after["CreateSubmission"] = 502  # recorded, then the answer is lost
    one_line_error(kagglesalt("submit", "-m", "lost answer"), "HTTP 502",
                   "Kaggle may have it", "kagglesalt submissions")
    assert len(server.submitted) == 1
    row = submissions.Ledger(with_data / "submissions").read().iloc[-1]
    assert (row["file"], row["status"], row["kaggle_ref"]) == (path.name, "uploading", "")
    server.fail_after.clear()
    one_line_error(kagglesalt("submit", "-m", "retry"), "was cut short",
                   "kagglesalt submissions")
    assert kagglesalt("submissions").exit_code == 0
    row = submissions.Ledger(with_data / "submissions").read().iloc[-1]
    assert row["kaggle_ref"] == "1000" and row["status"] == "complete"
    one_line_error(kagglesalt("submit", "-m", "retry"), "was already submitted")
    assert len(server.submitted) == 1


@pytest.mark.parametrize("method, status", [
    ("StartSubmissionUpload", 503),  # refused before it was recorded
    ("CreateSubmission", 400),  # a definite no (HTTP 4xx) to the request that records it
])
def test_a_refused_upload_leaves_no_row_and_a_retry_goes_through(server, with_data, method,
                                                                 status):
    write_submission(with_data)
    server.status[method] = status
    one_line_error(kagglesalt("submit", "-m", "refused"), f"HTTP {status}")
    assert len(submissions.Ledger(with_data / "submissions").read()) == 0
    server.status.clear()
    assert kagglesalt("submit", "-m", "accepted").exit_code == 0
    assert len(server.submitted) == 1


@pytest.mark.parametrize("cut", ["mid-row", "mid-ref"])
def test_a_ledger_cut_short_is_refused_in_one_line_and_kept_as_it_was(server, with_data, cut):
    write_submission(with_data)
    assert kagglesalt("submit", "-m", "first").exit_code == 0
    ledger = with_data / "submissions" / "ledger.csv"
    text = ledger.read_text()
    damaged = text[: text.index("1000") + 2] if cut == "mid-ref" else text[: len(text) // 2 + 40]
    ledger.write_text(damaged)
    write_submission(with_data, "second.csv", rle="3 4")
    for args in (["submit", "-m", "second"], ["submissions"]):
        one_line_error(kagglesalt(*args), "ledger.csv is damaged", "row 1", "left as it is")
    assert ledger.read_text() == damaged
    assert len(server.submitted) == 1


def test_a_connection_that_never_answers_times_out_in_one_line(server, with_data,
                                                                monkeypatch):
    import time

    monkeypatch.setenv("KAGGLESALT_NETWORK_TIMEOUT", "0.5")
    server.stall = {"ListSubmissions"}
    began = time.monotonic()
    one_line_error(kagglesalt("submissions"), "did not answer within 0.5 s",
                   "KAGGLESALT_NETWORK_TIMEOUT")
    assert time.monotonic() - began < 15
    assert server.rpc_calls().count("ListSubmissions") == 3  # a listing is tried again
    write_submission(with_data)
    server.stall = {"StartSubmissionUpload"}
    one_line_error(kagglesalt("submit", "-m", "stalled"), "did not answer within 0.5 s")
    assert len(submissions.Ledger(with_data / "submissions").read()) == 0  # nothing sent
    server.stall = {"CreateSubmission"}
    one_line_error(kagglesalt("submit", "-m", "stalled"), "Kaggle may have it")
    assert submissions.Ledger(with_data / "submissions").read().iloc[-1]["status"] == \
        "uploading"
