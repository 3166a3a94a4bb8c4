"""zfaccel demo: every figure written and listed, on a random model and tiny data (the bundled
run is exercised in test_demo_bundled)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from zfaccel.demo.run import _pick_images, run_demo
from zfaccel.models import small_zfnet


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = small_zfnet(10).eval()
    images = torch.randn(60, 3, 64, 64)
    labels = torch.arange(60) % 10
    return model, torch.utils.data.TensorDataset(images, labels)


def test_demo_writes_every_figure(tiny, tmp_path):
    model, data = tiny
    names = [f"c{i}" for i in range(10)]
    out = run_demo(tmp_path / "demo", model=model, data=data, class_names=names, images=3, occluded=1,
                   show_progress=False)  # fmt: skip
    assert [p.name for p in out.projections] == ["0_c0.png", "1_c3.png", "2_c7.png"]  # spread over the classes
    assert [p.stem for p in out.top9] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert [p.name for p in out.occlusion] == ["0_c0.png"]
    # Figs. 5 and 6; Table 1 needs the bundled data's named parts, so it is left out here
    assert [p.name for p in out.studies] == ["fig5_invariance.png", "fig6_filters.png"]
    assert "Euclidean distance between the features" in out.captions[out.studies[0]]
    for path in out.all():
        with Image.open(path) as img:
            assert img.size[0] > 100 and img.size[1] > 100, path
    page = out.index.read_text()
    assert all(f"<a href='{p.relative_to(out.folder).as_posix()}'" in page for p in out.all())  # click to enlarge
    assert "max-width: 100%" in page  # fitted to the window
    assert "left 3 x 3 block holds their projections" in page
    assert page.count("<figcaption>") == len(out.all())
    assert "<figcaption>0_c0.png</figcaption>" not in page  # captions say what a figure shows, not its name


class ReadsTheLabel(torch.nn.Module):
    """Predicts class round(pixel (0, 0, 0)) with certainty: which images it gets right is known."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))  # the demo reads the device from the parameters

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0, 0, 0].round().long(), 4).float() * 10


def test_examples_are_the_first_correctly_classified_of_their_class():
    # Items (image, label): the pixel says what the model predicts; per class the first image is wrong.
    labels = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    predicted = [1, 2, 3, 0, 0, 1, 3, 3, 0, 1]  # class 2 is never right
    images = torch.zeros(len(labels), 3, 4, 4)
    images[:, 0, 0, 0] = torch.tensor(predicted, dtype=torch.float32)
    data = torch.utils.data.TensorDataset(images, torch.tensor(labels))
    picked, chosen = _pick_images(ReadsTheLabel(), data, [0, 1, 2, 3], 4, correct_only=True)
    assert chosen == [0, 1, 2, 3]
    assert picked[:, 0, 0, 0].tolist() == [0, 1, 3, 3]  # items 4, 5, then class 2's first (none right), 7
    picked, _ = _pick_images(ReadsTheLabel(), data, [0, 1, 2, 3], 2, correct_only=False)
    assert picked[:, 0, 0, 0].tolist() == [1, 3]  # the first of classes 0 and 2, right or wrong


def test_demo_without_the_studies(tiny, tmp_path):
    model, data = tiny
    out = run_demo(tmp_path, model=model, data=data, images=1, occluded=0, studies=False, show_progress=False)
    assert out.studies == [] and not (tmp_path / "studies").exists()
    assert "other studies" not in out.index.read_text()


@pytest.mark.parametrize("images, occluded", [(0, 0), (2, 3), (2, -1), ("2", 1), (11, 1)])
def test_demo_rejects_bad_counts(tiny, tmp_path, images, occluded):
    model, data = tiny
    with pytest.raises(ValueError, match="images"):
        run_demo(tmp_path, model=model, data=data, images=images, occluded=occluded, show_progress=False)


def test_cli_demo_on_the_bundled_model_and_data(tmp_path, capsys):
    """The README's main job, smaller: bundled weights, shapes test data, Fig. 4 record, occlusion."""
    from zfaccel.cli.main import main

    code = main(["demo", "--out", str(tmp_path / "d"), "--images", "2", "--occluded", "1"])
    out = capsys.readouterr().out
    assert code == 0
    written = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    names = sorted(p.split("/d/", 1)[1] for p in written)
    assert names == sorted(["projections/0_circle.png", "projections/1_diamond.png", "evolution.png",
                            "occlusion/0_circle.png"] + [f"top9/conv{i}.png" for i in range(1, 6)]
                           + ["studies/fig5_invariance.png", "studies/fig6_filters.png",
                              "studies/fig6_first_layers.png", "studies/table1_correspondence.png",
                              "studies/generalisation.png"])  # fmt: skip
    assert (tmp_path / "d" / "index.html").is_file()
    # The examples are classified correctly, and the occlusion panel says so (the first circle of the
    # test set is misclassified as a diamond: the demo skips it).
    page = (tmp_path / "d" / "index.html").read_text()
    assert "Example 0: circle (true and predicted" in page


@pytest.mark.parametrize("argv, message", [
    (["--images", "11", "--occluded", "11"], "--images 11: the bundled data has 10 classes"),
    (["--images", "0"], "--images 0"),
    (["--images", "2", "--occluded", "3"], "--occluded 3"),
])  # fmt: skip
def test_cli_demo_checks_counts_before_any_work(tmp_path, capsys, argv, message):
    from zfaccel.cli.main import main

    assert main(["demo", "--out", str(tmp_path / "d"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "d").exists()  # refused before writing anything
