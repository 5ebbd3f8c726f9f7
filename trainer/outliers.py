"""Non-digit images for outlier exposure (Hendrycks et al., 2019): what is not a digit.

Training pushes the model's softmax towards uniform on these, so that the service can answer
``is_digit: false`` for a letter, a word, a doodle or a row of several digits instead of
naming a digit with confidence. Each image is drawn at upload scale (dark ink on a light
canvas or paper, pens of many widths), encoded as PNG and run through the real pipeline,
:func:`digitcore.preprocess.preprocess`, so the outliers are exactly what the service would
feed the model; an upload the pipeline refuses is drawn again. :func:`load_outliers` keeps a
built set in ``data/outliers-<seed>-<count>.pt`` so that retraining does not draw it again.

Only the five DejaVu faces of :data:`TRAINING_FONTS` are used; matplotlib's other faces
(STIX, Computer Modern) are held out for evaluation (``testkit/nondigits.py``). Glyphs that
people write as digits (:data:`LOOKALIKE_LETTERS`) are never drawn, nor a plain circle or
ellipse (a 0) or a single straight stroke (a 1).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from digitcore.preprocess import preprocess
from trainer.cache import cached
from trainer.number_lines import FONT_FOLDER

TRAINING_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSansMono.ttf",
)
LOOKALIKE_LETTERS = {  # letter -> the digit it is read as, handwritten or printed
    "O": "0", "o": "0", "Q": "0", "D": "0", "C": "0", "c": "0",
    "I": "1", "l": "1", "i": "1", "J": "1", "j": "1",
    "Z": "2", "z": "2",
    "S": "5", "s": "5",
    "G": "6", "b": "6",
    "B": "8",
    "g": "9", "q": "9",
}  # fmt: skip
LETTERS = "".join(c for c in string.ascii_letters if c not in LOOKALIKE_LETTERS)
# No "!" (a bar and a speck the pipeline may drop: a 1), nor "©" or "®" (thickened, a ring: a 0).
SYMBOLS = "#@&%?*+=~$<>^¥÷\N{MULTIPLICATION SIGN}±"
WORDS = (
    "hello", "cat", "fox", "yes", "no", "ok", "hi", "the", "and", "word", "name", "test",
    "house", "apple", "water", "paper", "help", "thanks", "Mary", "Paris", "June", "Monday",
    "number", "text", "mnist", "photo", "draw", "pen", "key", "hat", "map", "run", "tree",
    "NEW", "STOP", "EXIT", "MENU", "WHY", "TAX", "Fax", "Tel", "Ref", "Date", "Total",
)  # fmt: skip
WORD_LENGTHS = (2, 3, 4, 5, 6, 7, 8)
WORD_LENGTH_SHARES = (0.25, 0.25, 0.2, 0.12, 0.08, 0.05, 0.05)  # long words shrink to a smear
LONGEST_SIDE = 150  # px at most: the pipeline takes 3x as long on 190 px as on 64 px
KINDS = ("letter", "word", "symbol", "scribble", "shape", "texture", "face", "digits")
SHAPES = (
    "triangle", "square", "star", "arrow", "block_arrow", "heart", "cross", "plus", "tick",
    "spiral", "blob", "polygon",
)  # fmt: skip
TEXTURES = ("hatching", "grid", "dots", "noise")
SCRIBBLE_LENGTH = 5.0  # a scribble's strokes, in widths of its box, at the least
PAPER_SHARE = 0.05  # photographed on paper: uneven light, noise (4x the pipeline's time)
DARK_SHARE = 0.1  # chalk on a board: light ink on a dark background
MAX_ATTEMPTS = 10  # drawings of one image the pipeline may refuse before giving up
CACHE_VERSION = 10  # bump when a change here or in the pipeline changes a seed's images


@dataclass(frozen=True)
class Outliers:
    """``images`` (N x 28 x 28 uint8, as the model sees them), the kind of each, and how many
    drawn uploads the pipeline refused (and were drawn again)."""

    images: torch.Tensor
    kinds: tuple[str, ...]
    refused: int


def outlier_kinds(with_digits: bool = True) -> tuple[str, ...]:
    """The kinds drawn, in the order image ``i`` cycles through them (``i % len(kinds)``)."""
    return KINDS if with_digits else tuple(k for k in KINDS if k != "digits")


def is_safe_text(text: str) -> bool:
    """Whether ``text`` cannot be read as digits: at most two thirds of its letters are
    look-alikes ("hello" is a word, "lol" and "So" could be 101 and 50)."""
    letters = [c for c in text if c.isalpha()]
    lookalikes = sum(c in LOOKALIKE_LETTERS for c in letters)
    return bool(letters) and 3 * lookalikes <= 2 * len(letters)


def outlier_images(count: int, seed: int, digits: torch.Tensor | None = None) -> torch.Tensor:
    """``count`` non-digit images (uint8 count x 28 x 28, white ink on black) for ``seed``.

    ``digits`` (the MNIST training images, uint8 N x 28 x 28) adds rows of 2-4 digits.
    """
    return build_outliers(count, seed, digits).images


def build_outliers(count: int, seed: int, digits: torch.Tensor | None = None) -> Outliers:
    """Draw, encode and preprocess ``count`` outliers; image ``i`` uses its own random stream,
    so the first images of a larger set are the images of a smaller one."""
    kinds = outlier_kinds(digits is not None)
    digit_pixels = None if digits is None else digits.numpy()
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    refused = 0
    for index in range(count):
        kind = kinds[index % len(kinds)]
        rng = np.random.default_rng([seed, index])
        for _ in range(MAX_ATTEMPTS):
            result = preprocess([_upload(draw(kind, rng, digit_pixels), rng)])[0]
            if not isinstance(result, Exception):
                break
            refused += 1
        else:
            raise RuntimeError(f"the pipeline refused {MAX_ATTEMPTS} {kind} outliers in a row")
        images[index] = np.rint(np.clip(result[1], 0, 1) * 255)
    labels = tuple(kinds[i % len(kinds)] for i in range(count))
    return Outliers(torch.from_numpy(images), labels, refused)


def cache_path(root: Path, count: int, seed: int) -> Path:
    return Path(root) / f"outliers-{seed}-{count}.pt"


def load_outliers(
    root: Path, count: int, seed: int, digits: torch.Tensor | None = None
) -> Outliers:
    """:func:`build_outliers`, cached in ``root/outliers-<seed>-<count>.pt``.

    The cache is used only if it was built by this version of the drawing code from the
    same ``digits``; otherwise it is rebuilt and replaced atomically.
    """
    key = {"version": CACHE_VERSION, "digits": fingerprint(digits)}

    def build() -> dict:
        built = build_outliers(count, seed, digits)
        return {"images": built.images, "kinds": list(built.kinds), "refused": built.refused}

    content = cached(cache_path(root, count, seed), key, build)
    return Outliers(content["images"], tuple(content["kinds"]), content["refused"])


def fingerprint(digits: torch.Tensor | None) -> str:
    if digits is None:
        return "none"
    pixels = np.ascontiguousarray(digits.numpy())
    return f"{pixels.shape}:{hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest()}"


# --- drawing: each returns ink in [0, 1] on a tight canvas (padding comes later) ------------


def draw(kind: str, rng: np.random.Generator, digits: np.ndarray | None = None) -> np.ndarray:
    """One non-digit of ``kind`` as ink in [0, 1] (float32 H x W), at upload scale."""
    if kind == "digits":
        if digits is None:
            raise ValueError("the 'digits' kind needs MNIST training images")
        return draw_digit_row(rng, digits)
    return DRAWERS[kind](rng)


@functools.lru_cache(maxsize=512)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FOLDER / name), size)


def render_text(
    text: str, font: ImageFont.FreeTypeFont, stroke: int, rng: np.random.Generator, tilt: float
) -> np.ndarray:
    """``text`` in ``font``, strokes thickened by ``stroke`` px, turned up to ``tilt`` degrees."""
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    margin = 2 + stroke
    image = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(image).text(
        (margin - left, margin - top), text, font=font, fill=255, stroke_width=stroke
    )
    return _tilted(image, rng, tilt)


def _tilted(image: Image.Image, rng: np.random.Generator, tilt: float) -> np.ndarray:
    angle = float(rng.uniform(-tilt, tilt))
    if tilt > 0:
        image = image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    return np.asarray(image, dtype=np.float32) / 255


def _pick(rng: np.random.Generator, options: str | tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def draw_letter(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(36, 110))
    stroke = int(rng.integers(0, size // 30 + 1))
    font = load_font(_pick(rng, TRAINING_FONTS), size)
    return render_text(_pick(rng, LETTERS), font, stroke, rng, 12)


def random_word(rng: np.random.Generator) -> str:
    """A word of :data:`WORDS` in some case, or 2-8 random letters of :data:`LETTERS`."""
    if rng.random() < 0.5:
        word = _pick(rng, WORDS)
        return _pick(rng, (word, word.lower(), word.title(), word.upper()))
    length = int(rng.choice(WORD_LENGTHS, p=WORD_LENGTH_SHARES))
    return "".join(_pick(rng, LETTERS) for _ in range(length))


def draw_word(rng: np.random.Generator) -> np.ndarray:
    word, font_name = random_word(rng), _pick(rng, TRAINING_FONTS)
    widest = int(LONGEST_SIDE * 100 / max(load_font(font_name, 100).getlength(word), 1))
    size = min(int(rng.integers(24, 64)), widest)
    stroke = int(rng.integers(0, size // 30 + 1))
    return render_text(word, load_font(font_name, size), stroke, rng, 6)


def draw_symbol(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(36, 110))
    stroke = int(rng.integers(0, size // 30 + 1))
    font = load_font(_pick(rng, TRAINING_FONTS), size)
    return render_text(_pick(rng, SYMBOLS), font, stroke, rng, 12)


class _Sketch:
    """A square canvas of ``size`` px to draw on with a pen of ``width`` px."""

    def __init__(self, rng: np.random.Generator, low: int = 56, high: int = 129) -> None:
        self.size = int(rng.integers(low, high))
        self.width = max(2, round(self.size * rng.uniform(0.025, 0.09)))
        self.filled = bool(rng.random() < 0.4)
        self.image = Image.new("L", (self.size, self.size), 0)
        self.pen = ImageDraw.Draw(self.image)

    def at(self, points: np.ndarray) -> list[tuple[float, float]]:
        """Unit-square points [0, 1]^2 -> canvas pixels, keeping the pen inside the canvas."""
        inset = self.width / 2 + 1
        scaled = inset + np.asarray(points, dtype=np.float64) * (self.size - 1 - 2 * inset)
        return [(float(x), float(y)) for x, y in scaled]

    def line(self, points: np.ndarray, closed: bool = False) -> None:
        xy = self.at(points)
        if closed:
            xy = [*xy, xy[0], xy[1]]
        self.pen.line(xy, fill=255, width=self.width, joint="curve")

    def polygon(self, points: np.ndarray) -> None:
        """Filled or outlined, as this sketch's ``filled`` says."""
        if self.filled:
            self.pen.polygon(self.at(points), fill=255)
        else:
            self.line(points, closed=True)

    def ink(self) -> np.ndarray:
        return np.asarray(self.image, dtype=np.float32) / 255


def _fit(points: np.ndarray) -> np.ndarray:
    """Points scaled (aspect kept) and centred into the unit square."""
    points = np.asarray(points, dtype=np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    span = float((high - low).max()) or 1.0
    return (points - low) / span + (1 - (high - low) / span) / 2


def _rotated(points: np.ndarray, angle: float) -> np.ndarray:
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.asarray(points) @ turn.T


def smooth_curve(points: np.ndarray, steps: int = 12) -> np.ndarray:
    """A smooth curve through the midpoints of ``points``, bent by each point between."""
    points = np.asarray(points, dtype=np.float64)
    t = np.linspace(0, 1, steps)[:, None]
    pieces = [points[:1]]
    for before, corner, after in zip(points[:-2], points[1:-1], points[2:], strict=True):
        start, end = (before + corner) / 2, (corner + after) / 2
        pieces.append((1 - t) ** 2 * start + 2 * (1 - t) * t * corner + t**2 * end)
    pieces.append(points[-1:])
    return np.concatenate(pieces)


def draw_scribble(rng: np.random.Generator) -> np.ndarray:
    """1-3 wandering strokes through 6-12 random points, long enough to be a tangle.

    A short random stroke can trace a 1, a 2 or a 7, and one that keeps turning the same way
    goes round a 0, a 6 or a 9: all strokes together are at least :data:`SCRIBBLE_LENGTH`
    times as long as the ink's box is wide, and none of them keeps turning one way.
    """
    sketch = _Sketch(rng)
    sketch.width = max(2, round(sketch.width * 0.7))
    while True:
        strokes = []
        for _ in range(int(rng.integers(1, 4))):
            points = rng.uniform(0, 1, (int(rng.integers(6, 13)), 2))
            while _circling(points):
                points = rng.uniform(0, 1, points.shape)
            strokes.append(points if rng.random() < 0.3 else smooth_curve(points))
        everything = np.concatenate(strokes)
        extent = float((everything.max(axis=0) - everything.min(axis=0)).max())
        length = sum(float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in strokes)
        if length >= SCRIBBLE_LENGTH * extent:
            break
    for stroke in strokes:
        sketch.line(stroke)
    return sketch.ink()


def _circling(points: np.ndarray) -> bool:
    """Whether a polyline mostly turns one way (it would be drawn as loops round a centre)."""
    heading = np.unwrap(np.arctan2(*np.diff(points, axis=0).T[::-1]))
    turns = np.diff(heading)
    turns = (turns + np.pi) % (2 * np.pi) - np.pi
    return abs(float(turns.sum())) > 0.5 * float(np.abs(turns).sum())


def _regular(corners: int, start: float) -> np.ndarray:
    angles = start + np.arange(corners) * 2 * np.pi / corners
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _triangle(sketch: _Sketch, rng: np.random.Generator) -> None:
    if rng.random() < 0.5:
        corners = _regular(3, rng.uniform(0, 2 * np.pi))
    else:  # any triangle that is not a sliver (a sliver is a 1)
        while True:
            corners = rng.uniform(0, 1, (3, 2))
            (ax, ay), (bx, by), (cx, cy) = corners
            twice_area = abs((bx - ax) * (cy - ay) - (cx - ax) * (by - ay))
            longest = max(np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1))
            if twice_area / longest**2 >= 0.45:  # its height is at least 0.45 of its base
                break
    sketch.polygon(_fit(corners))


def _square(sketch: _Sketch, rng: np.random.Generator) -> None:
    """A square (or a diamond: turned up to 45 degrees), never far from square."""
    aspect = rng.uniform(0.85, 1.15)
    corners = np.array([[0, 0], [aspect, 0], [aspect, 1], [0, 1]], dtype=np.float64)
    sketch.polygon(_fit(_rotated(corners, rng.uniform(0, np.pi / 2))))


def _star(sketch: _Sketch, rng: np.random.Generator) -> None:
    tips = int(rng.integers(5, 9))
    outer = _regular(tips, rng.uniform(0, 2 * np.pi))
    inner = _rotated(outer, np.pi / tips) * rng.uniform(0.35, 0.55)
    corners = np.stack([outer, inner], axis=1).reshape(-1, 2)
    sketch.polygon(_fit(corners))


def _arrow(sketch: _Sketch, rng: np.random.Generator) -> None:
    """A left/right arrow (one or two heads), never steep: a steep one reads as a 1 or a 7."""
    head = rng.uniform(0.2, 0.35)
    spread = rng.uniform(0.15, 0.3)
    barbs = np.array([[-head, -spread], [0.0, 0.0], [-head, spread]])
    strokes = [np.array([[0.0, 0.5], [1.0, 0.5]]), barbs + np.array([1.0, 0.5])]
    if rng.random() < 0.4:
        strokes.append(barbs * np.array([-1.0, 1.0]) + np.array([0.0, 0.5]))
    angle = rng.uniform(-0.3, 0.3) + (np.pi if rng.random() < 0.5 else 0.0)
    everything = _fit(_rotated(np.concatenate(strokes) - 0.5, angle))
    start = 0
    for part in strokes:
        sketch.line(everything[start : start + len(part)])
        start += len(part)


def _block_arrow(sketch: _Sketch, rng: np.random.Generator) -> None:
    """A fat arrow (a shaft and a triangular head) pointing any way."""
    shaft = rng.uniform(0.12, 0.2)
    head = rng.uniform(0.35, 0.45)
    neck = rng.uniform(0.45, 0.65)
    outline = np.array(
        [
            [0, -shaft], [neck, -shaft], [neck, -head], [1, 0],
            [neck, head], [neck, shaft], [0, shaft],
        ]
    )  # fmt: skip
    sketch.polygon(_fit(_rotated(outline, rng.uniform(0, 2 * np.pi))))


def _heart(sketch: _Sketch, rng: np.random.Generator) -> None:
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    sketch.polygon(_fit(_rotated(np.stack([x, y], axis=1), rng.uniform(-0.4, 0.4))))


def _cross(sketch: _Sketch, rng: np.random.Generator) -> None:
    jitter = rng.uniform(-0.08, 0.08, (4, 2))
    corners = np.array([[0, 0], [1, 1], [1, 0], [0, 1]]) + jitter
    points = _fit(corners)
    sketch.line(points[:2])
    sketch.line(points[2:])


def _plus(sketch: _Sketch, rng: np.random.Generator) -> None:
    arms = np.array([[0.0, 0.5], [1.0, 0.5], [0.5, 0.0], [0.5, 1.0]])
    points = _fit(_rotated(arms - 0.5, rng.uniform(-0.25, 0.25)))
    sketch.line(points[:2])
    sketch.line(points[2:])


def _tick(sketch: _Sketch, rng: np.random.Generator) -> None:
    """A check mark whose short leg falls steeply (a flat one reads as an L or a 7)."""
    corner = (rng.uniform(0.25, 0.4), rng.uniform(0.85, 1.0))
    points = np.array([[0.0, rng.uniform(0.35, 0.55)], corner, [1.0, rng.uniform(0.0, 0.15)]])
    sketch.line(_fit(_rotated(points - 0.5, rng.uniform(-0.25, 0.25))))


def _spiral(sketch: _Sketch, rng: np.random.Generator) -> None:
    """At least two turns: one turn would be a 6, a 9 or a 0."""
    theta = np.linspace(0, rng.uniform(2.2, 3.5) * 2 * np.pi, 200)
    radius = theta + rng.uniform(0.5, 2.0)
    points = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    if rng.random() < 0.5:
        points[:, 0] *= -1
    sketch.width = max(2, round(sketch.width * 0.6))
    sketch.line(_fit(points))


def _blob(sketch: _Sketch, rng: np.random.Generator) -> None:
    """A filled, lumpy shape: a circle bent by a few random harmonics."""
    theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    radius = np.ones_like(theta)
    for harmonic in range(2, 6):
        radius += rng.uniform(0.08, 0.25) * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
    points = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    sketch.filled = True
    sketch.polygon(_fit(points))


def _polygon(sketch: _Sketch, rng: np.random.Generator) -> None:
    """Any polygon of 5-10 corners round a centre, regular or jagged, filled or outlined."""
    corners = int(rng.integers(5, 11))
    angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
    regular = rng.random() < 0.4
    if regular:
        angles = rng.uniform(0, 2 * np.pi) + np.arange(corners) * 2 * np.pi / corners
    radii = np.ones(corners) if regular else rng.uniform(0.4, 1.0, corners)
    if regular and corners > 6:
        sketch.filled = True  # outlined, it is nearly a circle: a 0
    points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    sketch.polygon(_fit(points))


SHAPE_DRAWERS: dict[str, Callable[[_Sketch, np.random.Generator], None]] = {
    "triangle": _triangle,
    "square": _square,
    "star": _star,
    "arrow": _arrow,
    "block_arrow": _block_arrow,
    "heart": _heart,
    "cross": _cross,
    "plus": _plus,
    "tick": _tick,
    "spiral": _spiral,
    "blob": _blob,
    "polygon": _polygon,
}


def draw_shape(rng: np.random.Generator) -> np.ndarray:
    sketch = _Sketch(rng)
    SHAPE_DRAWERS[_pick(rng, SHAPES)](sketch, rng)
    return sketch.ink()


def draw_texture(rng: np.random.Generator) -> np.ndarray:
    """Hatching, a grid, scattered dots or a noise patch, filling a square or a wide patch."""
    sketch = _Sketch(rng, 72, 129)
    texture = _pick(rng, TEXTURES)
    size = sketch.size
    if texture in ("hatching", "grid"):
        sketch.width = max(2, round(sketch.width * 0.5))
        lines = int(rng.integers(4, 10))
        angle = rng.uniform(0, np.pi)
        offsets = np.linspace(-0.42, 0.42, lines)
        for turn in (0.0, np.pi / 2) if texture == "grid" else (0.0,):
            for offset in offsets:
                segment = np.array([[-0.7, offset], [0.7, offset]])
                ends = _rotated(segment, angle + turn + rng.uniform(-0.05, 0.05))
                inside = _clipped(ends, size)
                if inside:
                    sketch.pen.line(inside, fill=255, width=sketch.width)
    elif texture == "dots":
        for _ in range(int(rng.integers(7, 40))):
            x, y = rng.uniform(0.1, 0.9, 2) * size
            r = size * rng.uniform(0.02, 0.06)
            sketch.pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    else:
        cells = int(rng.integers(5, 12))
        noise = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
        field = Image.fromarray(noise, mode="F").resize((size, size), Image.Resampling.BICUBIC)
        ink = np.asarray(field) > rng.uniform(0.45, 0.6)
        return ink.astype(np.float32)
    return sketch.ink()


def _clipped(ends: np.ndarray, size: int) -> list[tuple[float, float]]:
    """A segment in centred unit coordinates, cut to the square [-0.45, 0.45]^2, in pixels."""
    (x0, y0), (x1, y1) = ends
    low, high = 0.0, 1.0
    for start, delta in ((x0, x1 - x0), (y0, y1 - y0)):
        if abs(delta) < 1e-9:
            if abs(start) > 0.45:
                return []
            continue
        a, b = sorted(((-0.45 - start) / delta, (0.45 - start) / delta))
        low, high = max(low, a), min(high, b)
    if low >= high:
        return []
    points = [(x0 + t * (x1 - x0), y0 + t * (y1 - y0)) for t in (low, high)]
    return [((x + 0.5) * (size - 1), (y + 0.5) * (size - 1)) for x, y in points]


def draw_face(rng: np.random.Generator) -> np.ndarray:
    """A smiley: a round, square or solid head (or none), two eyes and a mouth.

    The pipeline drops as specks the parts with under 8% of the largest part's ink, so the
    eyes are drawn with at least 12% of the head's (a round head alone is a 0), and a face
    without a head never has a flat mouth (alone, it would be a single stroke).
    """
    sketch = _Sketch(rng, 64, 129)
    size = sketch.size
    width = sketch.width = max(2, round(size * rng.uniform(0.025, 0.06)))
    pen = sketch.pen
    inset = width / 2 + 1
    head = str(rng.choice(["round", "square", "none", "solid"], p=[0.45, 0.1, 0.2, 0.25]))
    box = (inset, inset, size - 1 - inset, size - 1 - inset)
    features = 255
    if head == "round":
        pen.ellipse(box, outline=255, width=width)
    elif head == "square":
        pen.rounded_rectangle(box, radius=size * 0.15, outline=255, width=width)
    elif head == "solid":  # a filled head, its eyes and mouth left blank
        pen.ellipse(box, fill=255)
        features = 0
    eye_r = max(size * rng.uniform(0.05, 0.08), 0.4 * math.sqrt(size * width))
    eye_y = size * rng.uniform(0.32, 0.4)
    eye_dx = max(size * rng.uniform(0.14, 0.2), eye_r + 0.05 * size)
    for side in (-1, 1):
        x = size / 2 + side * eye_dx
        pen.ellipse((x - eye_r, eye_y - eye_r, x + eye_r, eye_y + eye_r), fill=features)
    mouths = ["smile", "frown", "open"] if head == "none" else ["smile", "frown", "flat", "open"]
    mouth = str(rng.choice(mouths))
    half = size * rng.uniform(0.16, 0.25)
    top = size * rng.uniform(0.55, 0.62)
    centre = size / 2
    if mouth == "smile":
        pen.arc(
            (centre - half, top - half, centre + half, top + half * 0.6), 20, 160, features, width
        )
    elif mouth == "frown":
        box = (centre - half, top + 0.1 * half, centre + half, top + half)
        pen.arc(box, 200, 340, features, width)
    elif mouth == "flat":
        pen.line(
            (centre - half, top + half * 0.3, centre + half, top + half * 0.3), features, width
        )
    else:
        r = max(half * 0.45, width * 1.5)
        pen.ellipse((centre - r, top, centre + r, top + 2 * r), outline=features, width=width)
    return sketch.ink()


def draw_digit_row(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """2-4 MNIST training digits left to right, with small gaps, touching or overlapping."""
    count = int(rng.integers(2, 5))
    picks = rng.choice(len(digits), size=count, replace=False)
    row = np.zeros((34, 28 * count + 8 * count), dtype=np.float32)
    x = 2
    for index in picks:
        digit = digits[index].astype(np.float32) / 255
        columns = np.flatnonzero(digit.any(axis=0))
        if columns.size == 0:
            continue
        digit = digit[:, columns[0] : columns[-1] + 1]
        y = 3 + int(rng.integers(-2, 3))
        region = row[y : y + 28, x : x + digit.shape[1]]
        np.maximum(region, digit, out=region)
        x += digit.shape[1] + int(rng.integers(-2, 5))
    row = row[:, : x + 4]
    scale = min(rng.uniform(2.0, 4.5), LONGEST_SIDE / row.shape[1])
    size = (round(row.shape[1] * scale), round(row.shape[0] * scale))
    big = Image.fromarray(row, mode="F").resize(size, Image.Resampling.BICUBIC)
    return np.clip((np.asarray(big) - 0.3) * 3.0, 0.0, 1.0).astype(np.float32)


DRAWERS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "letter": draw_letter,
    "word": draw_word,
    "symbol": draw_symbol,
    "scribble": draw_scribble,
    "shape": draw_shape,
    "texture": draw_texture,
    "face": draw_face,
}


# --- the upload: ink on a background, encoded as a client would send it ---------------------


def _upload(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """``ink`` padded with room around it, on a canvas, paper or board; PNG bytes."""
    pad = int(max(4, max(ink.shape) * rng.uniform(0.08, 0.25)))
    ink = np.pad(ink, pad)
    draw_on = rng.random()
    if draw_on < PAPER_SHARE:
        height, width = ink.shape
        yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
        angle = rng.uniform(0, 2 * np.pi)
        light = 0.75 + 0.2 * (np.cos(angle) * xx + np.sin(angle) * yy) / 1.4
        paper = 255 * light + rng.normal(0, rng.uniform(2, 6), ink.shape)
        gray = paper * (1 - ink) + rng.uniform(10, 80) * ink
    elif draw_on < PAPER_SHARE + DARK_SHARE:
        board, chalk = rng.uniform(0, 60), rng.uniform(180, 255)
        gray = board * (1 - ink) + chalk * ink
    else:
        canvas, pen = rng.uniform(210, 255), rng.uniform(0, 90)
        gray = canvas * (1 - ink) + pen * ink
    pixels = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
