"""mnistify on real-looking uploads, in-process through ``preprocess`` and the default model.

The metamorphic tests: cropping an accepted upload closer to its ink (the ink's box plus 0-5 px,
as a cropping tool does), pasting a photo on a flat canvas (a white page, black bars) or
turning it on one (the corners filled), must not change the digit read. Then the cases that
hold both sides of the paper model: a digit the frame cuts is kept, a page edge or frame
line beside a digit is dropped, and a photo of blank paper (noise and light only) is
refused.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from scipy import ndimage

from digitcore.checkpoint import load_model
from digitcore.errors import NoDigitFoundError
from digitcore.mnistify import mnistify, to_luminance, unrepeated
from digitcore.model import predict_probabilities
from digitcore.preprocess import preprocess
from testkit.realistic import SETS, _cropped, _digit_ink, generate, same_strokes
from trainer.sheets import encode, paper_photo

PER_SET = 30
PHONE_SAMPLES = 4  # 3000x4000 photos: slow to make


@pytest.fixture(scope="module")
def model(default_model_path):
    torch.set_num_threads(1)
    loaded, _ = load_model(default_model_path)
    return loaded


def read(model, uploads: list[bytes]) -> list[int | None]:
    """The digit read from each upload, ``None`` where the pipeline refused it."""
    outcomes = preprocess(uploads)
    accepted = [o for o in outcomes if not isinstance(o, Exception)]
    digits = iter([])
    if accepted:
        with torch.inference_mode():
            digits = iter(model(torch.stack([o.tensor for o in accepted])).argmax(1).tolist())
    return [None if isinstance(o, Exception) else next(digits) for o in outcomes]


def same_digits(model, mnist_test, name: str, change) -> tuple[int, int]:
    """Of 20 uploads of realistic set ``name``: how many the pipeline reads, and how many of
    those read the same digit once changed by ``change(data, index) -> data``."""
    images, labels = (t.numpy() for t in mnist_test)
    samples = list(generate(name, images, labels, 20))
    first = read(model, [s.data for s in samples])
    again = read(model, [change(s.data, index) for index, s in enumerate(samples)])
    pairs = [(d, a) for d, a in zip(first, again, strict=True) if d is not None]
    return len(pairs), sum(d == a for d, a in pairs)


def keeps_its_digit(model, mnist_test, name: str, change) -> None:
    """Of 20 uploads of set ``name``, 19 at least are read, and all but one of those read the
    same digit once changed by ``change(data, index) -> data``."""
    answered, same = same_digits(model, mnist_test, name, change)
    assert answered >= 19
    assert same >= answered - 1


def recropped(data: bytes, box: tuple[int, int, int, int], rng: np.random.Generator) -> bytes:
    """The upload, upright, cut to the ink's ``box`` plus 0-5 px a side, saved the same way."""
    image = Image.open(io.BytesIO(data))
    fmt = image.format
    image = ImageOps.exif_transpose(image)
    x0, y0, x1, y1 = box
    left, top, right, bottom = (int(m) for m in rng.integers(0, 6, 4))
    area = (
        max(0, x0 - left),
        max(0, y0 - top),
        min(image.width, x1 + right),
        min(image.height, y1 + bottom),
    )
    buffer = io.BytesIO()
    image.crop(area).save(buffer, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def test_cropping_closer_to_the_ink_keeps_the_digit(model, mnist_test):
    images, labels = (t.numpy() for t in mnist_test)
    rng = np.random.default_rng(7)
    agree = total = 0
    disagreements = []
    for name in SETS:
        count = PHONE_SAMPLES if name == "phone" else PER_SET
        samples = list(generate(name, images, labels, count))
        first = read(model, [s.data for s in samples])
        kept = [(s, d) for s, d in zip(samples, first, strict=True) if d is not None]
        second = read(model, [recropped(s.data, s.box, rng) for s, _ in kept])
        for (sample, digit), again in zip(kept, second, strict=True):
            total += 1
            agree += again == digit
            if again != digit:
                disagreements.append((sample.name, digit, again))
    assert total >= 0.95 * (PER_SET * (len(SETS) - 1) + PHONE_SAMPLES)
    assert agree / total >= 0.98, disagreements


def enlarged_crop(digit: np.ndarray, light_on_dark: bool, margin: int, factor: int, fmt: str):
    """An MNIST digit cut to its ink plus ``margin`` px and enlarged ``factor`` times
    (bicubic): a canvas drawing cropped close and scaled up, its strokes broad against the
    picture."""
    rows, cols = np.nonzero(digit.any(axis=1))[0], np.nonzero(digit.any(axis=0))[0]
    crop = digit[
        max(0, rows[0] - margin) : rows[-1] + 1 + margin,
        max(0, cols[0] - margin) : cols[-1] + 1 + margin,
    ]
    image = Image.fromarray(crop if light_on_dark else 255 - crop)
    size = (image.width * factor, image.height * factor)
    return encode(np.asarray(image.resize(size, Image.Resampling.BICUBIC)), fmt)


CLOSE_CROPS = [(1, 4, "PNG", 297), (1, 8, "PNG", 297), (0, 10, "JPEG", 280)]


@pytest.mark.parametrize(("margin", "factor", "fmt", "least"), CLOSE_CROPS)
@pytest.mark.parametrize("light_on_dark", [True, False], ids=["white on black", "black on white"])
def test_a_digit_cropped_to_its_ink_and_enlarged_is_read(
    model, mnist_test, light_on_dark, margin, factor, fmt, least
):
    """White on black, most of such a canvas is the strokes' halo, not its exact colour, and
    the strokes are deep against the picture's short side: taken for a shadow's lit paper, the
    black became the ink. Of these 300 white on black, 294, 242 and 132 were read right before,
    300, 300 and 289 now (the rest: mostly 1s that fill a picture cut to them, still broad
    against its width). Black on white: 300, 299 and 300."""
    images, labels = (t.numpy()[:300] for t in mnist_test)
    uploads = [enlarged_crop(d, light_on_dark, margin, factor, fmt) for d in images]
    digits = read(model, uploads)
    assert sum(d == label for d, label in zip(digits, labels, strict=True)) >= least


def cut_to_its_ink(digit: np.ndarray, factor: int) -> bytes:
    """An MNIST digit (white on black) cut to its ink, no margin, enlarged ``factor`` times
    (bilinear), as a PNG."""
    crop = Image.fromarray(digit).crop(Image.fromarray(digit).getbbox())
    size = (crop.width * factor, crop.height * factor)
    return encode(np.asarray(crop.resize(size, Image.Resampling.BILINEAR)), "PNG")


@pytest.mark.parametrize(("factor", "least"), [(1, 982), (2, 976), (4, 981)])
def test_a_digit_cut_to_its_ink_light_on_black_is_read_as_that_digit(
    default_model_path, mnist_test, factor, least
):
    """MNIST's own digits cut to their ink, no margin, enlarged ``factor`` times (bilinear):
    a thick digit is then most of its picture and of its border, and its black canvas passed
    for dark ink (a 0 read inside out), or for the corners of a picture turned within its
    frame (an 8 blurred into a blob); a 1 crosses its whole picture, and the paper's level,
    smoothed through the black beside it, followed the stroke where none was (below). Of
    these 1,000, read right and as a digit: 972, 957 and 962 at first, 981, 965 and 970
    before the black canvas was taken as it is, 985, 980 and 985 now."""
    images, labels = (t.numpy()[1000:2000] for t in mnist_test)
    uploads = [cut_to_its_ink(digit, factor) for digit in images]
    assert read_as_digits(default_model_path, uploads, labels) >= least


@pytest.mark.parametrize(("factor", "least"), [(1, 186), (3, 180), (6, 177)])
def test_a_one_cut_to_its_stroke_is_read(default_model_path, mnist_test, factor, least):
    """A 1 cut to its ink is a stroke from the top of its picture to the bottom, as wide as
    most of it, with slivers of black canvas beside it, mostly its strokes' halo. The paper's
    level was smoothed through them and rose to the stroke where it crosses the picture, so
    the 1 was read in broken pieces; or, all ink, it filled its outline along a side, and was
    refused as a shadow. A drawing's dark canvas under strokes cut close to them, the darkest
    value and a good share of the dark pixels (``CANVAS_SHARE``), is now taken as the paper,
    and a patch reaching all four sides is no shadow cast from one. Of the first 200 test
    1s, read right and as a digit: 184, 169 and 168 before, 189, 184 and 181 now (black on
    white: 193, 192 and 193, as before; the rest white on black are mostly 1s so narrow that
    their black is taken for the ink)."""
    images, labels = (t.numpy() for t in mnist_test)
    ones = np.nonzero(labels == 1)[0][:200]
    uploads = [cut_to_its_ink(digit, factor) for digit in images[ones]]
    assert read_as_digits(default_model_path, uploads, labels[ones]) >= least


def test_an_mnist_digit_saved_as_a_small_jpeg_black_on_white_is_read(
    default_model_path, mnist_test
):
    """MNIST's 28x28 pictures, black on white, saved as JPEG (quality 75): the ringing along
    a long upright or level stroke (a 9's stem, a 5's bar) carried it on to the picture's
    edges, and it was cleared as a ruled line. Of test digits 2000-2999, read right and as
    a digit: 958 before, 981 now (as PNG, 995 of 1,000 others)."""
    images, labels = (t.numpy()[2000:3000] for t in mnist_test)
    uploads = [encode(255 - digit, "JPEG") for digit in images]
    assert read_as_digits(default_model_path, uploads, labels) >= 975


def read_as_digits(model_path, uploads: list[bytes], labels: np.ndarray) -> int:
    """How many of ``uploads`` the model at ``model_path`` reads as their ``labels`` with a
    confidence that passes its threshold (``is_digit``)."""
    model, checkpoint = load_model(model_path)
    outcomes = preprocess(uploads)
    read = [(o, int(label)) for o, label in zip(outcomes, labels, strict=True)]
    read = [(o, label) for o, label in read if not isinstance(o, Exception)]
    with torch.inference_mode():
        batch = torch.stack([o.tensor for o, _ in read])
        confidence, digits = predict_probabilities(model, batch, checkpoint.temperature).max(1)
    passed = (confidence >= checkpoint.digit_threshold).tolist()
    return sum(
        d == label and ok for d, (_, label), ok in zip(digits.tolist(), read, passed, strict=True)
    )


CANVASES = {  # a picture pasted on a flat canvas: (set, colour, where, format)
    "photo on a white page": ("photo", (255, 255, 255), "all round", "PNG"),
    "photo on a white page, JPEG": ("photo", (255, 255, 255), "all round", "JPEG"),
    "photo on black, JPEG": ("photo", (0, 0, 0), "all round", "JPEG"),
    "photo between a phone's letterbox bars": ("photo", (0, 0, 0), "above and below", "JPEG"),
    "digital drawing on black": ("canvas_white", (0, 0, 0), "all round", "PNG"),
    "marker drawing on grey, JPEG": ("marker", (128, 128, 128), "all round", "JPEG"),
    "photo held by a finger, on a white page": ("finger", (255, 255, 255), "all round", "PNG"),
}


def pasted(data: bytes, colour: tuple[int, int, int], where: str, fmt: str) -> bytes:
    """The upload pasted on a canvas of one ``colour``, as an editor or a screenshot does."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    border = (0, image.height) if where == "above and below" else image.height // 2
    return encode(np.asarray(ImageOps.expand(image, border=border, fill=colour)), fmt)


@pytest.mark.parametrize("canvas", list(CANVASES))
def test_a_picture_pasted_on_a_flat_canvas_keeps_its_digit(model, mnist_test, canvas):
    name, *how = CANVASES[canvas]
    # before, with the canvas taken for the photo's paper (one exact value), 2 or 3 of 20; with
    # a drawing's white page (one exact value) taken for a shape drawn filled, 0 of 20 (on black
    # and on grey); with the frame's edge, not the picture's, the one fingers reach in from, the
    # finger kept as ink: 4 of 20
    keeps_its_digit(model, mnist_test, name, lambda data, _: pasted(data, *how))


def in_a_black_frame(data: bytes, _: int) -> bytes:
    """The upload framed in black, 4 % of its longer side wide (a scanner's black edge, an
    app's frame); saved as a JPEG, whose blocks ring through a frame that thin."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    framed = ImageOps.expand(image, border=max(2, max(image.size) // 25), fill=(0, 0, 0))
    return encode(np.asarray(framed), "JPEG", quality=92)


@pytest.mark.parametrize("name", ["coloured_paper", "faint_pencil"])
def test_a_picture_in_a_thin_black_frame_keeps_its_digit(model, mnist_test, name):
    # the frame's rows, a few levels off black where the JPEG rang, were no flat bar, and the
    # frame became ink round the digit: 13 and 14 of 20 read the same before
    keeps_its_digit(model, mnist_test, name, in_a_black_frame)


def padded_to_a_square(data: bytes, fmt: str) -> bytes:
    """The upload padded to a square with its own median colour (``ImageOps.pad``): a pad of
    the paper's colour, round paper whose pixels spread about it."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colour = tuple(int(v) for v in np.median(np.asarray(image).reshape(-1, 3), axis=0))
    return encode(np.asarray(ImageOps.pad(image, (max(image.size),) * 2, color=colour)), fmt)


@pytest.mark.parametrize("name", ["photo", "non_square", "small_on_page"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_photo_padded_to_a_square_in_its_own_colour_keeps_its_digit(model, mnist_test, name, fmt):
    # before, with the paper's pixels near the pad's colour taken for a drawing's canvas
    # showing, 18, 6 and 5 of 20 as PNG, the strip and the small digit 6 of 20 as JPEG
    keeps_its_digit(model, mnist_test, name, lambda data, _: padded_to_a_square(data, fmt))


def as_a_phone_saves_it(data: bytes, fmt: str) -> bytes:
    """The upload re-encoded as a phone's camera saves it: HEIC (iPhones, many Androids) or
    AVIF, at the quality cameras use."""
    image = Image.open(io.BytesIO(data))
    buffer = io.BytesIO()
    image.convert("RGBA" if "A" in image.getbands() else "RGB").save(buffer, fmt, quality=60)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["photo", "pencil", "canvas_transparent"])
@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_a_picture_saved_as_heic_or_avif_keeps_its_digit(model, mnist_test, name, fmt):
    keeps_its_digit(model, mnist_test, name, lambda data, _: as_a_phone_saves_it(data, fmt))


def as_floats(data: bytes, _: int) -> bytes:
    """The upload as a float TIFF in [0, 1], one grey channel, as numpy, scikit-image or
    tifffile write one."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L")
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.float32) / 255).save(buffer, "TIFF")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["photo", "pencil"])
def test_a_photo_saved_as_floats_in_0_1_keeps_its_digit(model, mnist_test, name):
    # taken for 8-bit levels, the picture was all but black: 0 of 20 read the same before
    keeps_its_digit(model, mnist_test, name, as_floats)


def dithered(data: bytes, _: int) -> bytes:
    """The upload dithered to 1 bit (Floyd-Steinberg, as Pillow, a fax's photo mode or a
    halftone scan print a photo's greys): a PNG of dots."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("L")
    buffer = io.BytesIO()
    image.convert("1").save(buffer, "PNG")
    return buffer.getvalue()


def dim(data: bytes, index: int) -> bytes:
    """The upload as a photo taken in a dim room: a quarter of the light, the sensor's grain
    (4 levels) over it, JPEG."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    rng = np.random.default_rng(index)
    pixels = 0.25 * np.asarray(image, dtype=np.float32) + rng.normal(0, 4, (*image.size[::-1], 1))
    return encode(pixels, "JPEG", quality=92)


@pytest.mark.parametrize("name", ["faint_pencil", "pencil"])
def test_a_dim_photo_keeps_its_digit(model, mnist_test, name):
    """Faint pencil in a dim photo stands a few levels above the paper, under the sensor's
    grain pixel by pixel: nothing stood out, and the picture was refused. Where nothing
    stands out from a dim paper's grain it is now looked at again smoothed
    (``GRAIN_BLUR``): faint pencil 15 -> 19 of 20 read the same (pencil 20 either way)."""
    answered, same = same_digits(model, mnist_test, name, dim)
    assert answered == 20
    assert same >= 18


@pytest.mark.parametrize("name", ["small_on_page", "shadows"])
def test_a_photo_dithered_to_one_bit_keeps_its_digit(model, mnist_test, name):
    # the dots were read as they are: specks round a small digit, a shadow's paper as ink
    # (0 and 14 of 20 read the same before)
    keeps_its_digit(model, mnist_test, name, dithered)


TURNS = {  # a picture turned on a flat canvas: (set, canvas colour, format)
    "photo on black, JPEG": ("photo", (0, 0, 0), "JPEG"),
    "photo on white": ("photo", (255, 255, 255), "PNG"),
    "pencil on black": ("pencil", (0, 0, 0), "PNG"),
    "a strip of paper on white": ("non_square", (255, 255, 255), "PNG"),
    "a digital drawing on black": ("canvas_white", (0, 0, 0), "PNG"),
    "photo on its paper's colour": ("photo", None, "JPEG"),  # a deskew filling with the page's
    "a small digit on a page, on the page's colour": ("small_on_page", None, "PNG"),
}


ANGLES = np.random.default_rng(5).uniform(3, 10, 20) * np.resize([1, -1], 20)  # degrees


def turned(data: bytes, angle: float, colour: tuple[int, int, int] | None, fmt: str) -> bytes:
    """The upload turned by ``angle`` degrees on a canvas of one ``colour`` filling the
    corners, as an editor straightening a photo or a scanner deskewing a page does; ``None``:
    the colour of the picture's own edge (its median), as a deskew matching the page does."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if colour is None:
        pixels = np.asarray(image)
        edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        colour = tuple(int(v) for v in np.median(edge, axis=0))
    return encode(
        np.asarray(image.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=colour)),
        fmt,
    )


@pytest.mark.parametrize("turn", list(TURNS))
def test_a_picture_turned_on_a_flat_canvas_keeps_its_digit(model, mnist_test, turn):
    name, colour, fmt = TURNS[turn]
    # before, with the corners taken for ink or a frame, 13, 7, 3 and 5 of 20; the digital
    # drawing (its page taken for a shape drawn filled) 8 of 20; on the paper's own colour, the
    # paper's grain and light joining the canvas, 16 and 3 of 20
    keeps_its_digit(model, mnist_test, name, lambda data, i: turned(data, ANGLES[i], colour, fmt))


CUTS = {  # a picture turned within its own frame, its corners filled: (set, colour)
    "photo, black corners": ("photo", (0, 0, 0)),
    "pencil, black corners": ("pencil", (0, 0, 0)),
    "ruled paper, black corners": ("ruled_paper", (0, 0, 0)),
    "photo, white corners": ("photo", (255, 255, 255)),
    "a small digit on a page, white corners": ("small_on_page", (255, 255, 255)),
}


def turned_within(data: bytes, angle: float, colour: tuple[int, int, int]) -> bytes:
    """The upload turned by ``angle`` degrees within its own frame, as ``Image.rotate`` does
    by default: its corners cut off, the frame's corners filled with ``colour``; saved in its
    own format."""
    image = Image.open(io.BytesIO(data))
    fmt = image.format
    turned = image.convert("RGB").rotate(angle, Image.Resampling.BICUBIC, fillcolor=colour)
    return encode(np.asarray(turned), fmt, **({"quality": 90} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_picture_turned_within_its_frame_keeps_its_digit(model, mnist_test, cut):
    """The canvas is only in the frame's corners, what it leaves a rectangle with its corners
    cut off. Taken for ink, the corners framed the digit: 1, 4, 10, 9 and 7 of 20 before."""
    name, colour = CUTS[cut]
    keeps_its_digit(model, mnist_test, name, lambda data, i: turned_within(data, ANGLES[i], colour))


@pytest.mark.parametrize(("fmt", "floor"), [("PNG", 16), ("JPEG", 9)])
def test_a_small_digit_on_a_page_turned_on_black_mostly_keeps_its_digit(
    model, mnist_test, fmt, floor
):
    """Below the other pictures' 19 of 20: the digit is 2.5-6 % of a large page, a few pixels
    where the page is analysed (a JPEG drafted smaller still), beside the painted canvas."""
    _, same = same_digits(
        model, mnist_test, "small_on_page", lambda data, i: turned(data, ANGLES[i], (0, 0, 0), fmt)
    )
    assert same >= floor
    # 18 and 12 of 20; with the canvas painted with the nearest pixels unsmoothed (the
    # paper's grain streaked into lines), 15 and 4


def vignetted(data: bytes, fmt: str, depth: float) -> bytes:
    """The upload darkened towards its corners as a phone's lens does: by ``depth`` at the
    middle of each side and twice that in the corners (the brightness falls with the square
    of the distance from the centre)."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    distance = ((xs - width / 2) / (width / 2)) ** 2 + ((ys - height / 2) / (height / 2)) ** 2
    return encode((pixels * (1 - depth * distance)[..., None]).astype(np.uint8), fmt)


@pytest.mark.parametrize(
    ("name", "fmt", "depth"),
    [
        ("photo", "JPEG", 0.15),
        ("pencil", "PNG", 0.15),
        ("faint_pencil", "JPEG", 0.15),
        ("small_on_page", "JPEG", 0.15),
        ("small_on_page", "JPEG", 0.3),
        ("canvas_white", "PNG", 0.35),
        ("marker", "JPEG", 0.3),
    ],
)
def test_a_photo_darker_towards_its_corners_keeps_its_digit(model, mnist_test, name, fmt, depth):
    # before, with the light modelled as a plane under the closing, the darker corners came out
    # as ink: the photos 18, the small digits 9 of 20 (corners 30 % darker). With corners 60
    # and 70 % darker, the smoothing, not following the lens' bowl into the corners, left
    # patches of ink there: the small digits 4, the white canvases 15 of 20. Black marker with
    # corners 60 % darker: the grey corners were taken for pieces of a dark canvas the strokes
    # cut (the marker's black one exact value), the ink light: 13 of 20 kept their digit
    # before, 20 now
    keeps_its_digit(model, mnist_test, name, lambda data, _: vignetted(data, fmt, depth))


def glared(data: bytes, index: int) -> bytes:
    """The upload under a glare: a lamp's reflection, a round spot 120 levels brighter at its
    middle (a Gaussian 15 % of the longer side wide), somewhere in the middle half of the
    picture (drawn from ``index``); saved as a JPEG."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    rng = np.random.default_rng(index)
    middle_y, middle_x = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
    ys, xs = np.mgrid[0:height, 0:width]
    spot = np.exp(
        -((ys - middle_y) ** 2 + (xs - middle_x) ** 2) / (2 * (0.15 * max(height, width)) ** 2)
    )
    return encode(pixels + 120 * spot[..., None], "JPEG", quality=90)


def test_a_photo_under_a_glare_keeps_its_digit(model, mnist_test):
    # the glare, fitted as a lens' bowl, left a moat round it that the closing filled, and the
    # window grew over its halo: 16 of 20 before
    keeps_its_digit(model, mnist_test, "photo", glared)


def test_a_small_digit_on_a_page_under_a_glare_mostly_keeps_its_digit(model, mnist_test):
    """The glare's halo, taken for ink, outweighed a digit 2.5-6 % of the page: 4 of 20 read
    the same before, 18 now."""
    _, same = same_digits(model, mnist_test, "small_on_page", glared)
    assert same >= 16


def reflected(data: bytes, index: int) -> bytes:
    """The upload with a window's reflection on it: a soft-edged rectangle 100 levels
    brighter, 20-40 % of the picture each way, its corner in the upper left half (drawn from
    ``index``); saved as a JPEG."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    height, width = pixels.shape[:2]
    rng = np.random.default_rng(index)
    top, left = rng.uniform(0.1, 0.5) * height, rng.uniform(0.1, 0.5) * width
    bottom, right = top + rng.uniform(0.2, 0.4) * height, left + rng.uniform(0.2, 0.4) * width
    ys, xs = np.mgrid[0:height, 0:width]
    soft = 0.03 * max(height, width)
    inside = [(ys - top) / soft, (bottom - ys) / soft, (xs - left) / soft, (right - xs) / soft]
    patch = np.prod([1 / (1 + np.exp(-side)) for side in inside], axis=0)
    return encode(pixels + 100 * patch[..., None], "JPEG", quality=90)


def test_pencil_under_a_window_reflection_keeps_its_digit(model, mnist_test):
    # the reflection, a bright patch too small to pass for a shadow's lit paper, was taken
    # for light ink on the (darker) paper: 18 of 20 before
    keeps_its_digit(model, mnist_test, "pencil", reflected)


def negative(data: bytes, _: int) -> bytes:
    """The upload's negative, flattened on white where it is transparent: light strokes on
    dark paper (chalk on a board, a white pen on black card) under the photo's own light,
    now falling off towards the board's lit side; saved as a JPEG."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGBA")
    flat = Image.new("RGBA", image.size, (255, 255, 255, 255))
    flat.alpha_composite(image)
    return encode(255 - np.asarray(flat.convert("RGB"), dtype=np.float32), "JPEG", quality=90)


def test_the_negative_of_a_close_cropped_photo_keeps_its_digit(model, mnist_test):
    """The board's light spread its dark class as widely as a shadow with strokes in it, so
    the lit board passed for lit paper and the light strokes for a shadow's: of 40 tight and
    40 frame-cut crops, 71 read the same before (78 now); the spread is measured about the
    light's plane."""
    images, labels = (t.numpy() for t in mnist_test)
    samples = [s for n in ("tight_crop", "cut_by_frame") for s in generate(n, images, labels, 40)]
    first = read(model, [s.data for s in samples])
    again = read(model, [negative(s.data, index) for index, s in enumerate(samples)])
    pairs = [(d, a) for d, a in zip(first, again, strict=True) if d is not None]
    assert len(pairs) >= 78
    assert sum(d == a for d, a in pairs) >= len(pairs) - 4


def sheet(ink: np.ndarray, seed: int) -> bytes:
    """``ink`` in [0, 1] photographed on paper: uneven light, texture, noise, JPEG."""
    return encode(paper_photo(np.random.default_rng(seed), ink.shape, ink), "JPEG", quality=85)


def digit_inks(mnist_test, count: int) -> list[tuple[np.ndarray, int]]:
    images, labels = (t.numpy() for t in mnist_test)
    rng = np.random.default_rng(11)
    return [(_digit_ink(images[i], rng, 120, 240), int(labels[i])) for i in range(count)]


def on_desk(ink: np.ndarray, seed: int) -> bytes:
    """``ink`` on a sheet of paper photographed lying on a darker, grained desk: the sheet
    40-75 % of the picture's height, anywhere in it, turned by up to 15 degrees half the
    time; JPEG."""
    rng = np.random.default_rng(seed)
    paper = paper_photo(rng, ink.shape, ink)
    whole = np.ones(ink.shape, dtype=np.float32)
    if seed % 2:
        angle = rng.uniform(-15, 15)
        paper = ndimage.rotate(paper, angle, axes=(1, 0), order=1)
        whole = ndimage.rotate(whole, angle, order=1)
    rows, cols = whole.shape
    height = int(rows / rng.uniform(0.4, 0.75))
    width = max(int(height * 4 / 3), cols + 2)
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (height, width)), (1, 12)) * 40
    tone = rng.uniform(0.25, 0.6) * 255
    desk = np.stack([tone * 0.8 + grain, tone * 0.55 + grain, tone * 0.35 + grain], axis=-1)
    top, left = int(rng.integers(0, height - rows + 1)), int(rng.integers(0, width - cols + 1))
    region = desk[top : top + rows, left : left + cols]
    region[:] = paper * whole[..., None] + region * (1 - whole[..., None])
    return encode(desk, "JPEG", quality=85)


def test_a_note_photographed_on_a_desk_keeps_its_digit(model, mnist_test):
    """The desk round the sheet is no paper of it: the smooth paper level ran from the bright
    sheet out over the desk, which came out as a band of ink round the sheet (11 of these 40
    read right before, 39 now)."""
    cases = digit_inks(mnist_test, 40)
    digits = read(model, [on_desk(ink, index) for index, (ink, _) in enumerate(cases)])
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 38


def skipping_pen(ink: np.ndarray, seed: int) -> bytes:
    """``ink`` written by a pen that skips (dry, or on rough paper): the strokes broken where
    a smooth random field falls in its lowest 40 %, into pieces about a stroke's width apart;
    photographed."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.normal(size=ink.shape), ink.shape[0] / 90)
    return sheet(ink * (field > np.quantile(field, 0.4)), seed)


def test_a_digit_written_by_a_skipping_pen_is_read(model, mnist_test):
    """A light piece of a broken stroke is no speck: dropped, it took the digit's shape with it
    (a 0 lost a side, a 7 its bar). Of these 150, 132 were read right before, 142 now."""
    cases = digit_inks(mnist_test, 150)
    digits = read(model, [skipping_pen(ink, index) for index, (ink, _) in enumerate(cases)])
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 139


def light_pen_on_dark_paper(ink: np.ndarray, seed: int) -> bytes:
    """``ink`` in a light pen (chalk, a white gel pen) on dark paper or card, with its grain
    and the light falling off across it, cropped to the ink plus 0-5 % of its size a side;
    PNG or JPEG."""
    rng = np.random.default_rng(seed)
    top, bottom, _, _ = ink_box(ink)
    margins = tuple(int(m) for m in rng.integers(0, (bottom - top) // 20 + 1, 4))
    crop, _ = _cropped(ink, ink, margins)
    paper, pen = rng.uniform(25, 75), rng.uniform(215, 250)
    light = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(1.0, 1.1), crop.shape[1])
    pixels = (paper + (pen - paper) * crop) * light + rng.normal(0, rng.uniform(1.5, 4), crop.shape)
    return encode(pixels, "PNG") if seed % 2 else encode(pixels, "JPEG", quality=90)


def test_a_light_pen_on_dark_paper_cropped_close_is_read(model, mnist_test):
    """Thick light strokes filling the picture are no lit paper beside a shadow: the dark
    paper holds nothing darker than its grain, where a shadow holds the strokes written in it.
    Taken for a shadow, the paper came out as the ink round hollow strokes (77 of these 100
    read right before, 100 now)."""
    cases = digit_inks(mnist_test, 100)
    digits = read(model, [light_pen_on_dark_paper(ink, i) for i, (ink, _) in enumerate(cases)])
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 96


def on_a_page(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``ink`` somewhere on a page 2-3 times its size each way."""
    rows, cols = ink.shape
    page = np.zeros((int(rows * rng.uniform(2, 3)), int(cols * rng.uniform(2, 3))), np.float32)
    top = int(rng.integers(0, page.shape[0] - rows + 1))
    left = int(rng.integers(0, page.shape[1] - cols + 1))
    page[top : top + rows, left : left + cols] = ink
    return page


def blotches(rng: np.random.Generator, shape: tuple[int, int], width: float) -> np.ndarray:
    """A smooth random field of soft blotches ``width`` of the picture's longer side wide,
    of unit standard deviation."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), width * max(shape))
    return field / field.std()


def mottled(ink: np.ndarray, seed: int) -> bytes:
    """``ink`` in a dark pen on mottled paper (stained, recycled or handmade paper, a wall):
    on a page (:func:`on_a_page`) whose tone wanders in soft blotches about a fifteenth of the
    page wide, 10-20 levels either way (standard deviation); JPEG."""
    rng = np.random.default_rng(seed)
    page = on_a_page(ink, rng)
    paper = 215 + rng.uniform(10, 20) * blotches(rng, page.shape, 1 / 15)
    pen = rng.uniform(20, 60)
    return encode(paper + (pen - paper) * page, "JPEG", quality=90)


def test_a_digit_on_mottled_paper_is_read(model, mnist_test):
    """Blotches wider than the paper's noise reaches rise above its floor and outweigh the
    strokes: the ink was stretched to the blotches' level, and they came out as strong as the
    digit. Where what rises above the floor falls into two classes, the strokes far stronger,
    the blotches are the floor (``mnistify._above_the_grain``). Of these 60, 17 were read right
    before (9 of them as digits), 58 now."""
    cases = digit_inks(mnist_test, 60)
    digits = read(model, [mottled(ink, index) for index, (ink, _) in enumerate(cases)])
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 55


def wiped_blackboard(ink: np.ndarray, seed: int) -> bytes:
    """``ink`` in chalk on a blackboard (:func:`on_a_page`), clouded where it was wiped: soft
    blotches a tenth of the board wide, up to 10-25 levels lighter; the chalk broken by the
    board's grain (a third of its pixels half as bright); JPEG."""
    rng = np.random.default_rng(seed)
    page = on_a_page(ink, rng)
    wiped = rng.uniform(10, 25) * np.clip(blotches(rng, page.shape, 1 / 10), 0, None)
    board = rng.uniform(35, 60) + wiped + rng.normal(0, 3, page.shape)
    chalk = page * np.where(rng.random(page.shape) < 1 / 3, 0.5, 1.0)
    return encode(board + (rng.uniform(215, 245) - board) * chalk, "JPEG", quality=90)


def test_chalk_on_a_wiped_blackboard_is_read(model, mnist_test):
    """Chalk is a few pixels of a blackboard clouded where it was wiped: the brightness split
    ran through the board, and its clouded half, broad and lighter, was taken for lit paper,
    the chalk with it, the rest for a shadow holding dark ink (``paper._ink_within``). Where
    both classes are broad and the light one reaches far past its middle, the split ran through
    the paper, the strokes light (``paper._light_past_split_paper``). Of these 60, 29 were read
    right before, 43 with the wiped clouds as the floor (:func:`mottled`), 57 now."""
    cases = digit_inks(mnist_test, 60)
    digits = read(model, [wiped_blackboard(ink, index) for index, (ink, _) in enumerate(cases)])
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 54


def small_on_a_large_canvas(digit: np.ndarray, seed: int) -> bytes:
    """An MNIST ``digit`` drawn 24-40 px high somewhere on a drawing app's canvas 1,200-2,000 px
    wide (under 3 % of it): black on white, or black strokes on a transparent canvas; PNG."""
    rng = np.random.default_rng(seed)
    size, width = int(rng.integers(24, 41)), int(rng.integers(1200, 2001))
    height = int(width * rng.uniform(0.6, 1.0))
    strokes = Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR)
    alpha = Image.new("L", (width, height), 0)
    alpha.paste(strokes, (int(rng.integers(0, width - size)), int(rng.integers(0, height - size))))
    if seed % 2:
        picture = Image.merge("RGBA", (*[Image.new("L", alpha.size, 0)] * 3, alpha))
    else:
        picture = ImageOps.invert(alpha)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_small_digit_on_a_large_drawing_canvas_is_read(model, mnist_test):
    """Ink spanning under 2 % of the picture is specks on paper, dust and grain, but a
    drawing's flat canvas holds neither: what is drawn on it was drawn. Such a digit was
    refused as "only specks" in the working copy; it is now read, again from the full picture
    (``paper.flat_canvas``, ``mnistify.DRAWN_SPAN``). Of these 40, 28 were read right before
    (12 refused), 40 now."""
    images, labels = (t.numpy() for t in mnist_test)
    uploads = [small_on_a_large_canvas(images[i], i) for i in range(40)]
    digits = read(model, uploads)
    assert sum(d == label for d, label in zip(digits, labels[:40], strict=True)) >= 38


def dim_or_flat(data: bytes, index: int) -> bytes:
    """The photo ``data`` taken in flat light (a quarter of its contrast, round mid-grey) for
    an even ``index``, dim for an odd one (a third of the exposure, sensor noise); JPEG."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32)
    if index % 2:
        pixels = 0.3 * pixels + np.random.default_rng(index).normal(0, 6, pixels.shape)
    else:
        pixels = 128 + 0.25 * (pixels - 128)
    return encode(pixels, "JPEG", quality=85)


def test_faint_pencil_in_a_dim_or_flat_lit_photo_is_read(model, mnist_test):
    """Light pencil photographed in flat or dim light stands 2-4 % above the paper, under
    ``MIN_CONTRAST``, but far above the paper's noise, in one shape edged as sharply as a pen's
    (``mnistify._faint_stroke``). Of these 40 (the realistic set's faint pencil), 7 were read
    right before (30 refused), 31 now."""
    images, labels = (t.numpy() for t in mnist_test)
    samples = list(generate("faint_pencil", images, labels, 40))
    digits = read(model, [dim_or_flat(sample.data, i) for i, sample in enumerate(samples)])
    assert sum(d == s.label for d, s in zip(digits, samples, strict=True)) >= 29


@pytest.mark.parametrize("depth", [8, 12])
def test_a_faint_stroke_is_ink_and_a_faint_blotch_is_not(depth):
    """``depth`` levels (3-5 %) darker than a noisy sheet, under ``MIN_CONTRAST``: a bar, edged
    sharply, is read as what it is; a stain as soft as it is wide (a tint of the paper) is not
    ink, however far above the noise."""
    rng = np.random.default_rng(depth)
    rows, cols = np.mgrid[0:300, 0:300]
    bar = (abs(cols - 150) < 4) & (abs(rows - 150) < 80)
    for spread in (20, 40):
        stain = np.exp(-((rows - 150) ** 2 + (cols - 150) ** 2) / (2 * spread**2))
        pixels = 200 - depth * stain + rng.normal(0, 2, stain.shape)
        with pytest.raises(NoDigitFoundError, match="nothing stands out"):
            mnistify(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))
    pixels = 200 - depth * bar + rng.normal(0, 2, bar.shape)
    rows, cols = np.nonzero(mnistify(Image.fromarray(pixels.clip(0, 255).astype(np.uint8))) > 0.3)
    assert np.ptp(rows) + 1 == 20 and np.ptp(cols) + 1 <= 4


def pixel_art(digit: np.ndarray, grid: int, binary: bool) -> bytes:
    """An MNIST ``digit`` drawn black on white on a ``grid`` x ``grid`` canvas (``binary``: each
    cell inked or not, else in greys), enlarged to 280 px by repeating its pixels; PNG."""
    cells = np.asarray(Image.fromarray(digit).resize((grid, grid), Image.BOX), np.float32)
    if binary:
        cells = np.where(cells > 100, 255.0, 0.0)
    picture = Image.fromarray((255 - cells).astype(np.uint8)).resize((280, 280), Image.NEAREST)
    return encode(np.asarray(picture), "PNG")


@pytest.mark.parametrize(
    ("grid", "binary", "before", "least"),
    [(10, True, 30, 33), (9, False, 37, 39), (8, False, 34, 37)],
    ids=["10 cells, inked or not", "9 cells (31.1 px each)", "8 cells"],
)
def test_pixel_art_is_read_at_its_own_size(model, mnist_test, grid, binary, before, least):
    """Shrunk to 20 px by area averaging, a digit drawn on a coarse grid and enlarged by
    repeating its pixels stays a staircase the network never saw; at its own size, enlarged
    smoothly as small pictures are, it reads as well as it can (:func:`unrepeated`): of these
    40 each, ``before`` were read right before, 35, 40 and 38 now."""
    images, labels = (t.numpy()[:40] for t in mnist_test)
    digits = read(model, [pixel_art(pixels, grid, binary) for pixels in images])
    assert sum(d == label for d, label in zip(digits, labels, strict=True)) >= least


def filling_its_grid(digit: np.ndarray, grid: int, light_on_dark: bool, levels: int) -> bytes:
    """An MNIST ``digit`` cut to its ink, centred in a square, drawn in ``levels`` greys on a
    ``grid`` x ``grid`` canvas and enlarged to 256 px by repeating its pixels (PNG): pixel art
    whose digit reaches the grid's edges, as in scikit-learn's 8x8 digits (17 levels)."""
    crop = Image.fromarray(digit).crop(Image.fromarray(digit).getbbox())
    square = Image.new("L", (max(crop.size), max(crop.size)))
    square.paste(crop, ((square.width - crop.width) // 2, (square.height - crop.height) // 2))
    cells = np.asarray(square.resize((grid, grid), Image.Resampling.BOX), np.float32)
    cells = np.round(cells * (levels - 1) / 255) * 255 / (levels - 1)
    cells = cells if light_on_dark else 255 - cells
    picture = Image.fromarray(cells.astype(np.uint8)).resize((256, 256), Image.NEAREST)
    return encode(np.asarray(picture), "PNG")


@pytest.mark.parametrize(
    ("light_on_dark", "levels", "least"),
    [(False, 256, 189), (True, 256, 185), (False, 17, 187)],
    ids=["black on white", "white on black", "black on white, 17 levels"],
)
def test_pixel_art_of_a_digit_filling_its_grid_is_read(
    default_model_path, mnist_test, light_on_dark, levels, least
):
    """At its own size (8x8) the digit is strokes cut close, its canvas one exact value with
    the cells its strokes half cover as halo: the paper's level was smoothed through those
    and followed the strokes. In 17 levels its dark cells repeat a grey, and the white strokes
    between them passed for light ink cut close on a dark canvas; a canvas is the darkest of
    its class. Of the first 200 test digits, read right and as a digit: 184 and 178 before
    a canvas under strokes cut close was taken as flat, 192 and 188 now; in 17 levels, 165
    before a canvas had to be the darkest of its class, 191 now (12 or 16 cells: 196-199)."""
    images, labels = (t.numpy()[:200] for t in mnist_test)
    uploads = [filling_its_grid(digit, 8, light_on_dark, levels) for digit in images]
    assert read_as_digits(default_model_path, uploads, labels) >= least


def test_only_a_picture_of_repeated_pixels_is_shrunk(mnist_test):
    rng = np.random.default_rng(0)
    cells = rng.random((9, 7)).astype(np.float32)
    assert np.array_equal(unrepeated(cells.repeat(4, axis=0).repeat(4, axis=1)), cells)
    images, labels = (t.numpy() for t in mnist_test)
    for sample in generate("canvas_white", images, labels, 20):
        gray = to_luminance(Image.open(io.BytesIO(sample.data)))
        assert unrepeated(gray) is gray


def test_a_digit_the_frame_cuts_is_kept(model, mnist_test):
    uploads, labels = [], []
    for index, (ink, label) in enumerate(digit_inks(mnist_test, 20)):
        side = index % 4  # the frame cuts 2 px into the strokes on one side, 0-2 px elsewhere
        margins = [index % 3, (index + 1) % 3, (index + 2) % 3, index % 2]
        margins[side] = -2
        crop, _ = _cropped(ink, ink, tuple(margins))
        uploads.append(sheet(crop, index))
        labels.append(label)
    digits = read(model, uploads)
    assert None not in digits
    assert sum(d == label for d, label in zip(digits, labels, strict=True)) >= 19


def framed(ink: np.ndarray, kind: str) -> np.ndarray:
    """``ink`` with a page edge (the dark table beyond it) or a frame line beside the digit."""
    ink = np.pad(ink, ink.shape[0] // 3)
    height, width = ink.shape
    extra = np.zeros_like(ink)
    if kind == "page_edge":
        extra[:, : width // 12] = 0.9
    elif kind == "frame_line":
        extra[height // 40 : height // 40 + 3, :] = 1.0
        extra[:, width - width // 30 - 3 : width - width // 30] = 1.0
    return np.maximum(ink, extra)


def ink_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(pixels > 0.3)
    return rows.min(), rows.max(), cols.min(), cols.max()


@pytest.mark.parametrize("kind", ["page_edge", "frame_line"])
def test_a_page_edge_or_frame_line_beside_the_digit_is_dropped(model, mnist_test, kind):
    cases = digit_inks(mnist_test, 10)
    plain = preprocess([sheet(framed(ink, "none"), i) for i, (ink, _) in enumerate(cases)])
    edged = preprocess([sheet(framed(ink, kind), i) for i, (ink, _) in enumerate(cases)])
    for (_, without, *_), (_, with_edge, *_) in zip(plain, edged, strict=True):
        # the digit alone, where it was: the edge added no ink and did not move or shrink it
        assert ink_box(with_edge) == pytest.approx(ink_box(without), abs=1)
    digits = read(model, [sheet(framed(ink, kind), i) for i, (ink, _) in enumerate(cases)])
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 9


def beside(ink: np.ndarray, kind: str, seed: int) -> bytes:
    """``ink`` photographed on paper with a finger reaching in from the left edge, clear of
    the digit, or a hard-edged shadow over the left part of the page, its edge through the
    digit (or nothing)."""
    ink = np.pad(ink, ink.shape[0] // 2)
    height, width = ink.shape
    _, _, left, right = ink_box(ink)
    rgb = paper_photo(np.random.default_rng(seed), ink.shape, ink)
    ys, xs = np.mgrid[0:height, 0:width]
    if kind == "finger":  # a half ellipse from the left edge, 3/4 of the way to the ink
        blob = (xs / (0.75 * left)) ** 2 + ((ys - height / 2) / (0.3 * left)) ** 2 < 1
        rgb[blob] = (200, 140, 110)
    elif kind == "shadow":  # 40 % darker left of a sharp, slightly slanted edge
        rgb[xs < right + 6 + 0.05 * (ys - height / 2)] *= 0.6
    return encode(rgb, "JPEG", quality=85)


@pytest.mark.parametrize("kind", ["finger", "shadow"])
def test_a_finger_or_a_hard_shadow_beside_the_digit_leaves_it_alone(model, mnist_test, kind):
    """A finger holding the sheet is no stroke of the digit (far broader than its strokes);
    a shadow's sharp edge is no line of ink (the paper's level follows it at full size)."""
    cases = digit_inks(mnist_test, 10)
    plain = preprocess([beside(ink, "none", i) for i, (ink, _) in enumerate(cases)])
    uploads = [beside(ink, kind, i) for i, (ink, _) in enumerate(cases)]
    for (_, without, *_), (_, with_it, *_) in zip(plain, preprocess(uploads), strict=True):
        # the digit alone, where it was (its ink's level is measured with the finger's, so its
        # faint edges may come out a pixel wider)
        assert ink_box(with_it) == pytest.approx(ink_box(without), abs=2)
        assert same_strokes(with_it, without)
    digits = read(model, uploads)
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 9


def out_of_focus(data: bytes, _: int) -> bytes:
    """The upload blurred as a photo out of focus: a Gaussian of 1.2 % of its shorter side."""
    image = Image.open(io.BytesIO(data))
    blurred = image.convert("RGB").filter(ImageFilter.GaussianBlur(0.012 * min(image.size)))
    return encode(np.asarray(blurred), image.format)


def thumbnail(data: bytes, _: int) -> bytes:
    """The upload shrunk to 40 px on its longer side, as a chat app's preview is."""
    image = Image.open(io.BytesIO(data))
    fmt = image.format
    image.thumbnail((40, 40), Image.Resampling.LANCZOS)
    return encode(np.asarray(image.convert("RGB")), fmt)


@pytest.mark.parametrize(("change", "least"), [(out_of_focus, 18), (thumbnail, 18)])
def test_a_finger_beside_a_blurred_or_shrunk_digit_is_left_alone(model, mnist_test, change, least):
    """Blurring or shrinking widens a digit's strokes and fills its small loops; the finger
    is told by its breadth against the digit's typical stroke, not its broadest spot (with
    that: 15 and 16 of 20 the same, 19 and 19 now)."""
    answered, same = same_digits(model, mnist_test, "finger", change)
    assert answered == 20
    assert same >= least


def guided(ink: np.ndarray, kind: str, content: str = "digit") -> np.ndarray:
    """``ink`` with a guide drawn clear of it: a closed box, a box of four strokes whose
    corners do not meet, a circle, a line under it, or a comb (a line with teeth);
    ``content`` "specks" puts a speck of dust where the digit was, "none" leaves the guide
    alone."""
    pad = ink.shape[0] // 3
    ink = np.pad(ink, pad)
    height, width = ink.shape
    top, bottom, left, right = ink_box(ink)
    y0, y1, x0, x1 = top - 12, bottom + 12, left - 12, right + 12
    image = Image.new("L", (width, height), 0)
    pen = ImageDraw.Draw(image)
    if kind == "box":
        pen.rectangle((x0, y0, x1, y1), outline=255, width=4)
    elif kind == "box_of_strokes":
        pen.line((x0 + 6, y0, x1 - 6, y0), fill=255, width=4)
        pen.line((x1, y0 + 6, x1, y1 - 6), fill=255, width=4)
        pen.line((x1 - 6, y1, x0 + 6, y1), fill=255, width=4)
        pen.line((x0, y1 - 6, x0, y0 + 6), fill=255, width=4)
    elif kind == "circle":  # through the corners of the ink's box grown by 12 px
        cx, cy = (left + right) / 2, (top + bottom) / 2
        rx, ry = 0.71 * (right - left) + 12, 0.71 * (bottom - top) + 12
        pen.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), outline=255, width=4)
    elif kind == "underline":
        pen.line((x0, y1, x1 + 20, y1 + 3), fill=255, width=4)
    elif kind == "comb":  # a form's cell: a line under it, teeth rising a third of its height
        pen.line((x0 - 20, y1, x1 + 20, y1), fill=255, width=4)
        for x in (x0, x1):
            pen.line((x, y1 - (bottom - top) // 3, x, y1), fill=255, width=4)
    guide = np.asarray(image, dtype=np.float32) / 255
    if content != "digit":
        ink = np.zeros_like(ink)
    if content == "specks":
        ink[(top + bottom) // 2 : (top + bottom) // 2 + 3, (left + right) // 2 :][:, :3] = 1
    return np.maximum(ink, guide)


GUIDES = ["box", "box_of_strokes", "circle", "underline", "comb"]


@pytest.mark.parametrize("kind", GUIDES)
def test_a_box_circle_or_line_drawn_round_or_under_the_digit_is_dropped(model, mnist_test, kind):
    cases = digit_inks(mnist_test, 10)
    plain = preprocess([sheet(guided(ink, "none"), i) for i, (ink, _) in enumerate(cases)])
    drawn = [sheet(guided(ink, kind), i) for i, (ink, _) in enumerate(cases)]
    for (_, without, *_), (_, with_guide, *_) in zip(plain, preprocess(drawn), strict=True):
        assert ink_box(with_guide) == pytest.approx(ink_box(without), abs=1)
        assert same_strokes(with_guide, without)  # the same strokes, the guide gone
    digits = read(model, drawn)
    assert sum(d == label for d, (_, label) in zip(digits, cases, strict=True)) >= 9


@pytest.mark.parametrize("kind", GUIDES)
def test_a_guide_alone_or_round_specks_is_what_was_sent(mnist_test, kind):
    ink, _ = digit_inks(mnist_test, 1)[0]
    for content in ("none", "specks"):
        ((_, seen, *_),) = preprocess([sheet(guided(ink, kind, content), 0)])
        rows, cols = np.nonzero(seen > 0.3)
        assert rows.max() - rows.min() >= 8 or cols.max() - cols.min() >= 8  # not a speck


def shaded_blank(kind: str, seed: int) -> bytes:
    """A photo of blank paper (JPEG) with a shadow along one side (5-25 % of the picture, its
    edge ``hard`` or ``soft`` and slightly slanted, 25-55 % dark) or under a ``lamp`` off to
    one side (its light falling to a third)."""
    rng = np.random.default_rng(seed)
    height, width = (int(n) for n in rng.integers(200, 480, size=2))
    page = paper_photo(rng, (height, width), np.zeros((height, width), dtype=np.float32))
    ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
    if kind == "lamp":
        y, x = rng.uniform(-0.2, 1.2, size=2)
        fall = (1 + ((ys - y) ** 2 + (xs - x) ** 2) / rng.uniform(0.4, 1.0) ** 2) ** -1.5
        light = 0.33 + 0.67 * fall / fall.max()
    else:
        xs, ys = xs / xs.max(), ys / ys.max()
        across, along = (xs, ys) if seed % 2 else (ys, xs)
        across = 1 - across if seed % 4 > 1 else across
        inside = rng.uniform(0.05, 0.25) + rng.uniform(-0.15, 0.15) * (along - 0.5) - across
        depth = rng.uniform(0.25, 0.55)
        edge = inside > 0 if kind == "hard" else 1 / (1 + np.exp(-inside / 0.01))
        light = 1 - depth * edge
    return encode(page * light[..., None], "JPEG", quality=85)


@pytest.mark.parametrize("kind", ["hard", "soft", "lamp"])
def test_a_blank_page_with_a_shadow_or_under_a_lamp_is_no_digit(default_model_path, kind):
    """A shadow along a side of a blank page is a patch of shade filling its outline (a
    digit's strokes are far from convex) and is refused; under a lamp the luminance shows
    nothing, and the colours' axis, their brightness left out, nothing either (along their
    full spread, the lamp's fall-off was the luminance again). Before: of 40 of each, 5, 3
    and 8 refused and 16, 17 and 7 answered as a digit (``is_digit``); now 26, 26 and 36
    refused and 5, 4 and 1 answered (slivers of an edge that the paper's level follows in
    part)."""
    model, checkpoint = load_model(default_model_path)
    outcomes = preprocess([shaded_blank(kind, seed) for seed in range(40)])
    read = [o.tensor for o in outcomes if not isinstance(o, Exception)]
    assert len(outcomes) - len(read) >= 24  # refused
    confidence = predict_probabilities(model, torch.stack(read), checkpoint.temperature)
    assert int((confidence.max(1).values >= checkpoint.digit_threshold).sum()) <= 6


def test_a_page_edge_alone_is_not_an_error():
    edge = framed(np.zeros((200, 200), dtype=np.float32), "page_edge")
    for outcome in preprocess([sheet(edge, seed) for seed in range(3)]):
        assert not isinstance(outcome, Exception) or isinstance(outcome, NoDigitFoundError)


@pytest.mark.parametrize("size", [(480, 640), (90, 70), (300, 300)])
def test_a_photo_of_blank_paper_is_refused(size):
    uploads = [sheet(np.zeros(size, dtype=np.float32), seed) for seed in range(6)]
    for outcome in preprocess(uploads):
        assert isinstance(outcome, NoDigitFoundError)
