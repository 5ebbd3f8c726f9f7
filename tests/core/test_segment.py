"""The number reader (:mod:`digitcore.segment`) on pictures of whole numbers, real model.

Numbers are laid out from MNIST test digits and fonts (:mod:`testkit.numbers`): the digits
come back left to right with boxes in the input's pixels (pasted on black too), a broken
stroke or a 5's detached flag stays one digit, touching digits are split, a blank picture is
refused, and the exact accuracy over the first 100 pictures of each family stays above its
floor.
"""

from __future__ import annotations

import io
from itertools import pairwise

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps
from scipy import ndimage

from digitcore.checkpoint import load_model
from digitcore.errors import NoDigitFoundError
from digitcore.line_reader import load_line_reader, pooled
from digitcore.preprocess import decode_image
from digitcore.segment import number_from, read_digits
from testkit.numbers import generate, model_scorer
from trainer.number_lines import handwritten, jitter, lay_out, printed, shear
from trainer.sheets import SHEETS, encode, on_sheet, paper_photo

SAMPLES = 100
FLOORS = {  # exact-string floors on the first 100 (the goals, 0.97 apart and 0.90
    # touching, are bench/numbers.py's on 500)
    ("apart", "cuts"): 0.93,  # today 0.96
    ("touching", "cuts"): 0.63,  # today 0.68
    ("apart", "line reader"): 0.93,  # today 0.96
    ("touching", "line reader"): 0.88,  # today 0.94
    ("spaced", "cuts"): 0.94,  # today 0.97
    ("spaced", "line reader"): 0.95,  # today 0.98; with a gap's cut hugging one side, 0.94
    # and a picture refused ("nothing the size of a digit": its runs looked too wide)
}


@pytest.fixture(scope="module")
def line_reader(default_line_reader_path):
    return load_line_reader(default_line_reader_path, torch.device("cpu"))


@pytest.fixture(scope="module")
def score(default_model_path):
    torch.set_num_threads(1)
    model, _ = load_model(default_model_path)
    return model_scorer(model)


@pytest.fixture(scope="module")
def digits(mnist_test):
    """``digits(d, k)``: the k-th MNIST test image of digit d, as uint8 28x28."""
    images, labels = (t.numpy() for t in mnist_test)
    return lambda d, k=0: images[np.nonzero(labels == d)[0][k]]


def picture(ink: np.ndarray) -> Image.Image:
    """Dark ink on a white canvas."""
    return Image.fromarray((255 * (1 - ink)).astype(np.uint8))


def read(
    image: Image.Image, score, line_reader=None
) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The number and boxes, as ``POST /read`` answers them (with the line reader, if given)."""
    found = read_digits(image, score, read_line=line_reader)
    rows = [
        p if d.line is None else pooled(p, d.line)
        for d, p in zip(found, score([d.mnist for d in found]), strict=True)
    ]
    return number_from(np.array(rows)), [d.box for d in found]


def overlap(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def components(ink: np.ndarray) -> int:
    return ndimage.label(ink > 0.05, structure=np.ones((3, 3)))[1]


def test_digits_come_left_to_right_with_their_boxes(score, digits):
    ink, boxes = lay_out([handwritten(digits(d), 80) for d in (3, 1, 4, 7)], [25, 25, 25])
    number, found = read(picture(ink), score)
    assert number == "3147"
    assert [b[0] for b in found] == sorted(b[0] for b in found)
    assert all(overlap(f, b) > 0.8 for f, b in zip(found, boxes, strict=True))


def test_boxes_are_in_the_input_pixels_of_a_large_picture(score, digits):
    ink, boxes = lay_out([handwritten(digits(d), 80) for d in (9, 0, 2)], [30, 30])
    small = picture(ink)
    large = small.resize((small.width * 4, small.height * 4), Image.Resampling.BILINEAR)
    number, found = read(large, score)  # analysed at 512 px, answered at the input's scale
    assert number == "902"
    assert all(overlap(f, [4 * v for v in b]) > 0.8 for f, b in zip(found, boxes, strict=True))


def test_a_broken_stroke_stays_with_its_digit(score, digits):
    seven = handwritten(digits(7), 90).copy()
    middle = int(0.55 * seven.shape[0])
    seven[middle : middle + 4] = 0  # the pen lifted: the stem in two pieces
    assert components(seven) == 2
    ink, _ = lay_out([handwritten(digits(3), 90), seven, handwritten(digits(8), 90)], [30, 30])
    assert read(picture(ink), score)[0] == "378"


def skipping_pen_number(images, labels, seed: int) -> tuple[bytes, str]:
    """2-5 MNIST test digits written apart by a pen that skips (its strokes broken where a
    smooth random field falls in its lowest 35 %, pieces about a stroke's width apart) on a
    paper photo, JPEG; and the number."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(labels), int(rng.integers(2, 6)), replace=False)
    height = int(rng.integers(70, 110))
    ink, _ = lay_out(
        [handwritten(images[i], height) for i in picks], [height // 4] * (len(picks) - 1)
    )
    field = ndimage.gaussian_filter(rng.normal(size=ink.shape), height / 65)
    broken = ink * (field > np.quantile(field, 0.35))
    number = "".join(str(labels[i]) for i in picks)
    return encode(paper_photo(rng, ink.shape, broken), "JPEG", quality=85), number


def test_a_number_written_by_a_skipping_pen_is_read(score, line_reader, mnist_test):
    """Its digits in pieces, a digit cut at the gaps read as two or three; the gaps are closed
    (:func:`~digitcore.segment.bridged`). Of these 40, 6 were read exactly before, 19 now."""
    images, labels = (t.numpy() for t in mnist_test)
    cases = [skipping_pen_number(images, labels, seed) for seed in range(40)]
    right = sum(read(decode_image(data, gray=True), score, line_reader)[0] == number
                for data, number in cases)  # fmt: skip
    assert right >= 17


def with_a_dash(images, labels, seed: int) -> tuple[bytes, str]:
    """3-6 MNIST test digits, slanted alike, with a minus sign before them or a hyphen
    between two (a flat bar level with their middle, apart from them), on any sheet; and the
    digits."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(labels), int(rng.integers(3, 7)), replace=False)
    height = int(rng.integers(40, 100))
    slant = np.tan(np.radians(rng.uniform(-10, 20)))
    glyphs = [
        shear(handwritten(images[i], height * rng.uniform(0.85, 1.15)), slant + jitter(rng))
        for i in picks
    ]
    drops = [round(height * rng.uniform(-0.08, 0.08)) for _ in picks]
    gaps = [round(height * rng.uniform(0.1, 0.4)) for _ in picks[1:]]
    where = 0 if rng.random() < 0.5 else int(rng.integers(1, len(picks)))  # 0: a minus sign
    glyphs.insert(where, np.ones((max(2, int(0.09 * height)), int(0.4 * height))))
    drops.insert(where, -int(0.4 * height))  # raised to the middle of the digits
    gaps.insert(max(0, where - 1), round(height * rng.uniform(0.08, 0.2)))
    margins = tuple(int(rng.integers(height // 3, height)) for _ in range(4))
    ink, _ = lay_out(glyphs, gaps, drops, margins)
    number = "".join(str(labels[i]) for i in picks)
    return on_sheet(ink, rng, SHEETS[int(rng.integers(len(SHEETS)))]), number


def test_a_minus_sign_or_a_hyphen_is_no_digit(score, line_reader, mnist_test):
    """-42, 555-1234: a dash beside a slanted digit's tail was read as a digit of its own (a
    5) or with its neighbour (-1 read as 4). It is dropped with the specks: flat, as dark as
    the digits, level with their middle, before a digit, none of their ink in its rows and
    columns. Of these 100, 94 were read exactly before, 97 now (the default model of
    6 December and its line reader)."""
    images, labels = (t.numpy() for t in mnist_test)
    cases = [with_a_dash(images, labels, seed) for seed in range(100)]
    right = sum(read(decode_image(data, gray=True), score, line_reader)[0] == number
                for data, number in cases)  # fmt: skip
    assert right >= 95


def detached_flag(five: np.ndarray, gap: int = 5) -> np.ndarray:
    """A 5 whose flag (the bar on top) no longer meets the stem: ``gap`` px cut out."""
    five = five.copy()
    height = five.shape[0]
    stem = np.nonzero((five[int(0.22 * height) : int(0.3 * height)] > 0).any(axis=0))[0]
    five[: int(0.21 * height), stem.max() + 1 : stem.max() + 1 + gap] = 0
    assert components(five) == 2
    return five


@pytest.mark.parametrize("kind", ["printed", "handwritten"])
def test_a_5_with_its_flag_apart_is_one_digit(score, digits, kind):
    if kind == "printed":
        five = detached_flag(printed("DejaVuSans.ttf", 90, "5"))
    else:
        five = detached_flag(handwritten(digits(5, 1), 90))
    assert read(picture(np.pad(five, 20)), score)[0] == "5"
    ink, _ = lay_out([handwritten(digits(4), 90), five, handwritten(digits(1), 90)], [30, 30])
    assert read(picture(ink), score)[0] == "451"


@pytest.mark.parametrize("pair", [(2, 3), (4, 7), (9, 2)])
def test_touching_digits_are_split(score, digits, pair):
    glyphs = [handwritten(digits(d), 80) for d in pair]
    ink, boxes = lay_out(glyphs, [-2])  # overlapping by 2 px: one blot of ink
    assert components(ink) == 1
    number, found = read(picture(ink), score)
    assert number == "".join(map(str, pair))
    assert all(overlap(f, b) > 0.6 for f, b in zip(found, boxes, strict=True))


@pytest.mark.parametrize("count", [3, 4, 5])
def test_the_line_readers_count_decides_how_many_digits(score, digits, count):
    ink, _ = lay_out([handwritten(digits(d), 80) for d in (3, 1, 4, 7)], [25, 25, 25])
    readings = np.full((count, 10), 0.1)
    found = read_digits(picture(ink), score, read_line=lambda raster: readings)
    assert len(found) == count
    assert all(np.array_equal(d.line, row) for d, row in zip(found, readings, strict=True))


def test_a_count_no_split_allows_is_set_aside(score, digits):
    ink, _ = lay_out([handwritten(digits(d), 80) for d in (3, 1, 4, 7)], [25, 25, 25])
    found = read_digits(picture(ink), score, read_line=lambda raster: np.full((30, 10), 0.1))
    assert len(found) == 4 and all(d.line is None for d in found)


def numbers(digits, seed: int, gap: tuple[float, float], angle: float = 0.0, count: int = 10):
    """``count`` numbers of 4 to 6 MNIST test digits, 70 px tall, gaps of ``gap`` digit
    heights, turned ``angle`` degrees (a photo taken at an angle): (ink, number, boxes) each;
    the first ten of more are the ten."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        number = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 7))))
        glyphs = [handwritten(digits(int(d), int(rng.integers(0, 50))), 70) for d in number]
        gaps = [round(70 * rng.uniform(*gap)) for _ in number[1:]]
        ink, boxes = lay_out(glyphs, gaps, margins=(40, 40, 40, 40), angle=angle)
        yield ink, number, boxes


@pytest.mark.parametrize("angle", [-15, -10, 10, 15])
def test_a_number_photographed_at_an_angle_is_read_level(score, line_reader, digits, angle):
    right = 0
    for ink, number, boxes in numbers(digits, 3, (0.15, 0.35), angle, count=30):
        found, found_boxes = read(picture(ink), score, line_reader)
        right += found == number
        if found == number:
            assert all(overlap(f, b) > 0.6 for f, b in zip(found_boxes, boxes, strict=True))
    assert right >= 26  # 28-30 of 30 at each angle; not levelled: 2 to 8 of the first 10
    # (30 numbers: a retraining on another machine moves the first ten's 9-10 to 8-10)


def test_digits_far_apart_are_not_read_as_more(score, line_reader, digits):
    right = sum(
        read(picture(ink), score, line_reader)[0] == number
        for ink, number, _ in numbers(digits, 4, (0.6, 1.4), count=30)
    )
    assert right >= 26  # 27 of 30 (a broken 8 reads 2); gaps as they are: 8 of the first 10


def test_a_number_written_in_a_forms_comb_is_read_without_its_teeth(score, line_reader, digits):
    right = 0
    for ink, number, boxes in numbers(digits, 5, (0.5, 0.8)):
        comb = Image.fromarray((255 * ink).astype(np.uint8))
        pen = ImageDraw.Draw(comb)
        base = max(b[3] for b in boxes) + 12
        teeth = [boxes[0][0] - 15] + [(a[2] + b[0]) // 2 for a, b in pairwise(boxes)]
        pen.line((teeth[0], base, boxes[-1][2] + 15, base), fill=255, width=4)
        for x in [*teeth, boxes[-1][2] + 15]:
            pen.line((x, base - 22, x, base), fill=255, width=4)
        right += read(picture(np.asarray(comb) / 255), score, line_reader)[0] == number
    assert right >= 9  # 10 of 10; the teeth kept as ink: 1 of 10


def test_the_line_reader_sees_wide_gaps_narrowed(score, digits):
    def seen(gap: int) -> int:
        ink, _ = lay_out([handwritten(digits(d), 80) for d in (5, 2)], [gap])
        rasters = []
        read_digits(picture(ink), score, read_line=lambda r: rasters.append(r) or np.empty((0, 10)))
        return rasters[0].shape[1]

    narrow = seen(10)
    assert narrow < seen(150) < narrow + 40  # 150 px: narrowed to 0.45 H (about 30 px)
    assert seen(150) == seen(300)


def test_a_number_cropped_to_its_ink_is_read_whole(score, line_reader, mnist_test):
    images, labels = (t.numpy() for t in mnist_test)
    right = 0
    for sample in generate("apart", images, labels, 20):
        image = decode_image(sample.data, gray=True, reduce=False)  # the boxes' pixels
        x0, y0, x1, y1 = (f(b[i] for b in sample.boxes) for i, f in enumerate((min, min, max, max)))
        right += read(image.crop((x0, y0, x1, y1)), score, line_reader)[0] == sample.number
    assert right >= 19  # 20; with a digit that spans the crop taken for a rule: 12


@pytest.mark.parametrize("where", ["all round", "above and below"])
def test_a_number_pasted_on_black_is_read_with_its_boxes(score, line_reader, mnist_test, where):
    """A screenshot's dark frame round the page, a phone's letterbox bars (JPEG)."""
    images, labels = (t.numpy() for t in mnist_test)
    right = 0
    for sample in generate("apart", images, labels, 20):
        page = decode_image(sample.data, gray=True, reduce=False).convert("RGBA")
        page = Image.alpha_composite(Image.new("RGBA", page.size, "white"), page)  # a canvas'
        border = (0, page.height) if where == "above and below" else page.height // 2
        framed = np.asarray(ImageOps.expand(page.convert("RGB"), border))
        pasted = Image.open(io.BytesIO(encode(framed, "JPEG")))
        found, boxes = read(pasted, score, line_reader)
        if found == sample.number:
            right += 1
            left, top = (border, border) if isinstance(border, int) else border
            moved = [(x0 + left, y0 + top, x1 + left, y1 + top) for x0, y0, x1, y1 in sample.boxes]
            assert all(overlap(f, b) > 0.6 for f, b in zip(boxes, moved, strict=True))
    assert right >= 19  # 20; with the page taken for a shape drawn filled, 6 and 7 of 20


@pytest.mark.parametrize("blank", ["white", "paper"])
def test_a_blank_picture_is_refused(score, blank):
    if blank == "white":
        image = Image.new("RGB", (400, 200), "white")
    else:
        rng = np.random.default_rng(5)
        data = encode(paper_photo(rng, (300, 600), np.zeros((300, 600))), "JPEG", quality=85)
        image = decode_image(data, gray=True)
    with pytest.raises(NoDigitFoundError):
        read_digits(image, score)


@pytest.fixture(scope="module")
def accuracy(score, line_reader, mnist_test):
    """Exact-string accuracy over the first ``SAMPLES`` pictures of each family, by the cuts
    alone and with the line reader."""
    images, labels = (t.numpy() for t in mnist_test)
    found = {}
    for family in ("apart", "touching", "spaced"):
        right = {"cuts": 0, "line reader": 0}
        for sample in generate(family, images, labels, SAMPLES):
            image = decode_image(sample.data, gray=True)
            right["cuts"] += read(image, score)[0] == sample.number
            right["line reader"] += read(image, score, line_reader)[0] == sample.number
        for how, count in right.items():
            found[family, how] = count / SAMPLES
    return found


@pytest.mark.parametrize("case", list(FLOORS))
def test_accuracy_stays_above_its_floor(accuracy, case):
    assert accuracy[case] >= FLOORS[case], accuracy
