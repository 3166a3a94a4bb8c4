"""zfaccel.models.preprocessing: every pixel mode read as RGB in [0, 1], shorter side resized, centre cropped."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import zfaccel
from zfaccel.models import load_images, small_zfnet, zfnet
from zfaccel.models.image_files import read_rgb
from zfaccel.models.preprocessing import ImageFolder, Preprocessing, resize_center_crop

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def stripes(width: int = 100, height: int = 50) -> np.ndarray:
    """(height, width, 3) uint8: the left quarter red, the middle half green, the right quarter blue."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, : width // 4], a[:, width // 4 : 3 * width // 4], a[:, 3 * width // 4 :] = RED, GREEN, BLUE
    return a


# Plain preprocessing: normalize is the identity, so load returns RGB in [0, 1].
IDENTITY = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_a_wide_image_is_centre_cropped_not_squashed(tmp_path):
    Image.fromarray(stripes()).save(tmp_path / "wide.png")
    # size 50: the shorter side is 50 already; the crop is columns 25..74, all green.
    crop = Preprocessing(50, **IDENTITY).load(tmp_path / "wide.png")
    assert crop.shape == (3, 50, 50) and crop.dtype == torch.float32
    assert torch.equal(crop, torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 50, 50))
    # Squashing to 50 x 50 would have kept red on the left and blue on the right.
    squashed = np.asarray(Image.fromarray(stripes()).resize((50, 50), Image.BILINEAR))
    assert squashed[0, 0, 0] == 255 and squashed[0, -1, 2] == 255


def test_downscaled_crop_matches_a_hand_computation(tmp_path):
    """100 x 50 -> 50 x 25: halving with antialiasing is the filter [1, 3, 3, 1] / 8 (a triangle of
    half-width 2 sampled at -1.5, -0.5, 0.5, 1.5), output column j reading input columns 2j-1..2j+2.
    The crop starts at round((50 - 25) / 2) = round(12.5) = 12: column 12 reads 23, 24 (red) and 25,
    26 (green), so it is (1 + 3) / 8 = 0.5 red and 0.5 green; columns 13..36 read green only."""
    Image.fromarray(stripes()).save(tmp_path / "wide.png")
    crop = Preprocessing(25, **IDENTITY).load(tmp_path / "wide.png")
    expected = torch.zeros(3, 25, 25)
    expected[1] = 1.0
    expected[0, :, 0], expected[1, :, 0] = 0.5, 0.5
    torch.testing.assert_close(crop, expected, atol=1e-6, rtol=0)


def test_tall_image_and_torchvision_sizes():
    rgb = torch.rand(3, 101, 40)
    out = resize_center_crop(rgb, 20)  # resized to 20 x int(20 * 101 / 40) = 50 rows; top = round(15.0)
    assert out.shape == (3, 20, 20)
    resized = torch.nn.functional.interpolate(rgb[None], size=(50, 20), mode="bilinear", antialias=True)[0]
    torch.testing.assert_close(out, resized[:, 15:35])
    assert torch.equal(resize_center_crop(rgb[:, :40], 40), rgb[:, :40])  # square at size: untouched


def test_sixteen_bit_grey_png_keeps_its_scale(tmp_path):
    Image.fromarray(np.full((30, 40), 16384, np.uint16)).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as img:
        assert img.mode in ("I;16", "I")  # Pillow >= 10 reads I;16, older ones I
    rgb = read_rgb(tmp_path / "grey16.png")
    assert rgb.shape == (3, 30, 40) and rgb.dtype == torch.float32
    torch.testing.assert_close(rgb, torch.full((3, 30, 40), 16384 / 65535))  # 0.25, not 1.0 (clipped at 255)


@pytest.mark.parametrize(
    "mode, value, expected",
    [
        ("I", 32768, 32768 / 65535),  # 32-bit ints hold 16-bit samples
        ("I", 70000, 1.0),  # above 16-bit full scale: clipped
        ("F", 0.75, 0.75),  # floats as they are
        ("F", -2.0, 0.0),  # clipped to [0, 1]
    ],
)
def test_wide_integer_and_float_modes(tmp_path, mode, value, expected):
    dtype = np.int32 if mode == "I" else np.float32
    Image.fromarray(np.full((6, 8), value, dtype)).save(tmp_path / "x.tif")
    with Image.open(tmp_path / "x.tif") as img:
        assert img.mode == mode
    torch.testing.assert_close(read_rgb(tmp_path / "x.tif"), torch.full((3, 6, 8), float(expected)))


def palette_image() -> Image.Image:
    img = Image.new("P", (4, 2))
    img.putpalette([*RED, *GREEN, *BLUE] + [0] * (256 - 3) * 3)
    img.putdata([0, 1, 2, 1, 0, 0, 2, 2])
    return img


COLOURED = [
    ("palette.png", palette_image, [[RED, GREEN, BLUE, GREEN], [RED, RED, BLUE, BLUE]]),
    ("rgba.png", lambda: Image.new("RGBA", (3, 2), (10, 200, 30, 0)), [[(10, 200, 30)] * 3] * 2),  # alpha dropped
    ("la.png", lambda: Image.new("LA", (3, 2), (100, 50)), [[(100, 100, 100)] * 3] * 2),
    ("bits.png", lambda: Image.new("1", (3, 2), 1), [[(255, 255, 255)] * 3] * 2),
    ("cmyk.tif", lambda: Image.new("CMYK", (3, 2), (0, 255, 255, 0)), [[RED] * 3] * 2),  # no cyan, full magenta+yellow
]


@pytest.mark.parametrize("name, make, expected", COLOURED, ids=[c[0] for c in COLOURED])
def test_modes_load_to_their_colours(tmp_path, name, make, expected):
    make().save(tmp_path / name)
    rgb = read_rgb(tmp_path / name)
    torch.testing.assert_close(rgb, torch.tensor(expected, dtype=torch.float32).permute(2, 0, 1) / 255)


def test_palette_with_transparency_loads_without_a_warning(tmp_path, recwarn):
    img = palette_image()
    img.info["transparency"] = 0
    img.save(tmp_path / "t.png", transparency=0)
    rgb = read_rgb(tmp_path / "t.png")
    assert rgb[:, 0, 0].tolist() == [1.0, 0.0, 0.0] and not recwarn.list


def test_unreadable_missing_and_folder_paths_name_the_file(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"cannot read image '.*junk\.png'"):
        Preprocessing().load(junk)
    with pytest.raises(FileNotFoundError, match=r"image '.*gone\.png' does not exist"):
        read_rgb(tmp_path / "gone.png")
    with pytest.raises(ValueError, match="is not a file"):
        read_rgb(tmp_path)
    with pytest.raises(TypeError, match="image path must be"):
        read_rgb(3)


def test_load_images_stacks_and_normalises_for_the_model(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(30, 50), (64, 64), (90, 40)]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(paths[-1])
    model = small_zfnet()
    batch = zfaccel.load_images(paths, model)
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == torch.float32
    prep = Preprocessing(64, model.mean, model.std)
    torch.testing.assert_close(batch[2], prep.normalize(resize_center_crop(read_rgb(paths[2]), 64)))
    assert load_images(paths[1], model).shape == (1, 3, 64, 64)  # one path
    assert load_images(str(paths[0]), zfnet()).shape == (1, 3, 224, 224)  # ZFNet's 224 px
    with pytest.raises(ValueError, match="paths is empty"):
        load_images([], model)
    with pytest.raises(TypeError, match=r"paths\[1\] must be"):
        load_images([paths[0], 7], model)
    with pytest.raises(TypeError, match="model must be"):
        load_images(paths, "small")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_images([paths[0], tmp_path / "nope.png"], model)


def test_image_folder_uses_the_same_loading(tmp_path):
    Image.fromarray(stripes()).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    data = ImageFolder(tmp_path, Preprocessing(50, **IDENTITY))
    assert [f.name for f in data.files] == ["a.png"]
    image, index = data[0]
    assert index == 0 and image.shape == (3, 50, 50) and image[1].min() == 1.0
