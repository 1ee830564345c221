import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from kagglesalt import data, ensemble, report
from kagglesalt.cli import cli
from kagglesalt.workspace import Workspace

EXAMPLES = str(Path(__file__).parent / "plugin_examples")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synthetic_master, trained_runs):
    root = tmp_path_factory.mktemp("report")
    ws = Workspace(synthetic_master, root / "runs", root / "submissions")
    trained_runs(ws, "first", seed=1)
    return ws


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.headings = [], [], []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_h2 = tag == "h2"

    def handle_data(self, text):
        if self._in_h2:
            self.headings.append(text)
            self._in_h2 = False


def parsed(path):
    collector = Collector()
    collector.feed(path.read_text())
    collector.close()
    return collector


def test_the_report_of_a_run_is_one_self_contained_page(workspace):
    path = report.build(workspace, "first")
    assert path == workspace.runs_dir / "first" / "report.html"
    page = parsed(path)
    assert page.headings[:5] == ["Configuration", "Scores", "Learning curves", "Threshold",
                                 "Where it fails"]
    assert page.headings[5].startswith("Worst out-of-fold predictions")
    assert page.headings[6].startswith("Best out-of-fold predictions of images with salt")
    assert len(page.images) == 5
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        image = cv2.imdecode(np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8),
                             cv2.IMREAD_COLOR)
        assert image is not None and image.shape[0] > 100 and image.std() > 0
    text = path.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched from outside
    assert "empty images with salt predicted" in text and "fold 2" in text


def test_an_ensemble_report_shows_members_weights_and_gain(workspace):
    result = ensemble.run_ensemble(workspace, ["first"], name="ens")
    path = report.build(workspace)  # the newest: the ensemble
    assert path == result.path.with_suffix(".html")
    text = path.read_text()
    assert "member run" in text and "first" in text and "gain" in text


def test_the_command_prints_the_path(workspace):
    result = CliRunner().invoke(cli, [
        "--data-dir", str(workspace.data_dir), "--runs-dir", str(workspace.runs_dir),
        "--submissions-dir", str(workspace.submissions_dir), "report", "first"])
    assert result.exit_code == 0, result.output
    assert Path(" ".join(result.output.split())).name == "report.html"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_headless_chromium_renders_every_figure(workspace, tmp_path):
    path = report.build(workspace, "first")
    probe = tmp_path / "probe.html"
    check = ("<script>window.addEventListener('load', () => {"
             "const imgs = [...document.images];"
             "document.body.dataset.rendered = imgs.filter("
             "i => i.complete && i.naturalWidth > 0).length + '/' + imgs.length;});</script>")
    probe.write_text(path.read_text().replace("</body>", check + "</body>"))
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    rendered = re.search(r'data-rendered="(\d+)/(\d+)"', out.stdout)
    assert rendered, out.stderr[-2000:]
    assert rendered.group(1) == rendered.group(2) == "5"


def failure_counts(text: str) -> list[str]:
    table = text.split("<th>failure</th>")[1].split("</table>")[0]
    return re.findall(r"<td>(\d+)</td>", table)


def test_an_ensemble_report_judges_the_ensembles_final_masks(workspace):
    train = data.load_train(workspace.data_dir)
    empty, salty = int((train.coverage == 0).sum()), int((train.coverage > 0).sum())
    # A threshold near 0 calls every image salty; a huge minimum area empties every mask.
    ensemble.run_ensemble(workspace, ["first"], name="all-salt", threshold=0.001,
                          post="none")
    ensemble.run_ensemble(workspace, ["first"], name="emptied", threshold=0.001,
                          post="min_component=0,min_area=20000")
    salted = failure_counts(report.build(workspace, "all-salt").read_text())
    emptied = failure_counts(report.build(workspace, "emptied").read_text())
    assert salted[:4] == [str(empty), str(empty), "0", str(salty)]
    # the model's failures, then those of the post-processed masks, then the totals
    assert emptied[:6] == [str(empty), "0", str(empty), "0", str(salty), str(salty)]
    text = report.build(workspace, "emptied").read_text()
    assert "after the post-processing chosen on OOF (dropping masks under 20000 px)" in text
    assert "Worst out-of-fold predictions (after post-processing, as in the submission)" \
        in text
    assert "no post-processing was chosen" in report.build(workspace, "all-salt").read_text()


def test_the_loss_curve_draws_each_stage_apart_and_keeps_a_one_epoch_stage():
    import pandas as pd

    from kagglesalt.report import stage_segments

    history = pd.DataFrame({"epoch": [1, 2, 3], "stage": ["bce_dice", "bce_dice", "lovasz"],
                            "loss": [0.9, 0.5, 1.2]})
    assert stage_segments(history) == [("bce_dice", [1, 2], [0.9, 0.5]),
                                       ("lovasz", [3], [1.2])]
