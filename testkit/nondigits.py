"""Held-out non-digit uploads, with a fixed seed: the evidence for ``is_digit: false``.

The trainer shows the model non-digits (``trainer/outliers.py``) so that it is unsure of
them; this set measures whether that carries over to non-digits it never saw: letters and
words in the STIX and Computer Modern faces (:data:`HELD_OUT_FONTS`, none of the trainer's
DejaVu faces), symbols and pictographs in STIX, shapes the trainer never draws
(:data:`HELD_OUT_SHAPES`) and smileys drawn differently. Glyphs people write as digits
(``trainer.outliers.LOOKALIKE_LETTERS``) are left out here too. Each image is encoded as the
file a client would upload, on the backgrounds of :mod:`testkit.realistic` (paper photos,
scans, white and transparent canvases, pencil, coloured paper, a large canvas).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import numpy as np
from matplotlib.ft2font import FT2Font
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from testkit.realistic import _paste
from trainer.outliers import FONT_FOLDER, LOOKALIKE_LETTERS
from trainer.sheets import SHEETS, encode, on_sheet

SEED = 7
HELD_OUT_FONTS = (  # every matplotlib face with Latin letters the trainer never uses
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmb10.ttf",
    "cmti10.ttf",
    "cmtt10.ttf",
    "cmmi10.ttf",
)
SYMBOL_FONTS = HELD_OUT_FONTS[:4]  # the Computer Modern faces put other glyphs at "<", "$"...
LETTERS = "".join(c for c in string.ascii_letters if c not in LOOKALIKE_LETTERS)
# No "©", "®" or "☺" (the pipeline keeps their ring, a 0, and drops what is inside), nor "¶" (a 9).
SYMBOLS = "#@&%?*+=~$<>^¥÷\N{MULTIPLICATION SIGN}±‰"
PICTOGRAPHS = "♣♠♦☼✉⌂☒♪"  # in STIXGeneral only
SMILEY_GLYPHS = {  # emoticons, written sideways
    ":-)": "emoticon_nose",
    ";-)": "emoticon_wink",
    ":)": "emoticon",
}
HELD_OUT_WORDS = (
    "hello world", "A", "Hi!", "thank you", "OK", "yes", "no", "Name", "sign here", "fax",
    "March", "Peter", "wow", "Why?", "hey", "cafe", "Mark", "x", "pay", "enter", "TEXT", "Hm",
    "New York", "kg", "mm", "Rd", "Apt", "VAT",
)  # fmt: skip
HELD_OUT_SHAPES = (
    "pentagon", "moon", "cloud", "lightning", "house", "note", "envelope", "checkbox",
)  # fmt: skip
KINDS = ("letter", "word", "symbol", "shape", "smiley")
BACKGROUNDS = (*SHEETS, "large_canvas")


@dataclass(frozen=True)
class NonDigit:
    data: bytes  # the file a client would upload (PNG or JPEG)
    kind: str  # one of KINDS
    name: str  # what was drawn and on what, e.g. "shape-12-moon-photo"


def nondigit_uploads(count: int = 400, seed: int = SEED) -> list[NonDigit]:
    """``count`` held-out non-digit uploads, the same every run; upload ``i`` cycles through
    :data:`KINDS` and draws from its own stream, so a smaller set is a prefix of a larger."""
    uploads = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        rng = np.random.default_rng([seed, index])
        ink, what = DRAWERS[kind](rng)
        background = str(rng.choice(BACKGROUNDS))
        uploads.append(
            NonDigit(_as_upload(ink, rng, background), kind, f"{kind}-{index}-{what}-{background}")
        )
    return uploads


def _as_upload(ink: np.ndarray, rng: np.random.Generator, background: str) -> bytes:
    """``ink`` (in [0, 1], tight) with room around it, on ``background``, encoded."""
    if background == "large_canvas":
        side = int(max(ink.shape) * rng.uniform(1.6, 2.6))
        canvas = np.zeros((side, side), dtype=np.float32)
        _paste(canvas, ink, rng)
        return encode(np.repeat((255 * (1 - canvas))[..., None], 3, axis=2), "PNG", mode="RGB")
    pad = int(max(ink.shape) * rng.uniform(0.1, 0.4))
    return on_sheet(np.pad(ink, pad), rng, background)


# --- fonts ----------------------------------------------------------------------------------


def font_has_text(font_name: str, text: str) -> bool:
    """Whether ``font_name`` has a glyph for every character of ``text`` (spaces aside)."""
    charmap = FT2Font(str(FONT_FOLDER / font_name)).get_charmap()
    return all(ord(c) in charmap for c in text if not c.isspace())


def _glyphs(text: str, font_name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """``text`` in ``font_name`` at ``size`` px, thickened a little at random, tilted."""
    font = ImageFont.truetype(str(FONT_FOLDER / font_name), size)
    stroke = int(rng.integers(0, size // 30 + 1))
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    margin = 2 + stroke
    image = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), 0)
    ImageDraw.Draw(image).text(
        (margin - left, margin - top), text, font=font, fill=255, stroke_width=stroke
    )
    image = image.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BILINEAR, expand=True)
    return np.asarray(image, dtype=np.float32) / 255


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def draw_letter(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    letter, font = _pick(rng, LETTERS), _pick(rng, HELD_OUT_FONTS)
    return _glyphs(letter, font, int(rng.integers(90, 300)), rng), f"{letter}-{font[:-4]}"


def draw_word(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    word, font = _pick(rng, HELD_OUT_WORDS), _pick(rng, HELD_OUT_FONTS)
    size = int(rng.integers(50, 130))
    return _glyphs(word, font, size, rng), f"{word.replace(' ', '_')}-{font[:-4]}"


def draw_symbol(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if rng.random() < 0.3:
        glyph, font = _pick(rng, PICTOGRAPHS), "STIXGeneral.ttf"
    else:
        glyph, font = _pick(rng, SYMBOLS), _pick(rng, SYMBOL_FONTS)
    return _glyphs(glyph, font, int(rng.integers(90, 300)), rng), f"U{ord(glyph):04X}-{font[:-4]}"


# --- shapes: drawn on a square of ``side`` px, a pen ``width`` px wide ----------------------


class _Board:
    def __init__(self, rng: np.random.Generator) -> None:
        self.side = int(rng.integers(100, 300))
        self.width = max(3, round(self.side * rng.uniform(0.03, 0.08)))
        self.image = Image.new("L", (self.side, self.side), 0)
        self.pen = ImageDraw.Draw(self.image)

    def px(self, points) -> list[tuple[float, float]]:
        """Unit-square points -> pixels, leaving room for the pen."""
        inset = self.width / 2 + 2
        reach = self.side - 2 * inset
        return [(inset + x * reach, inset + y * reach) for x, y in points]

    def stroke(self, points) -> None:
        self.pen.line(self.px(points), fill=255, width=self.width, joint="curve")

    def fill(self, points) -> None:
        self.pen.polygon(self.px(points), fill=255)

    def outline(self, points) -> None:
        self.stroke([*points, points[0], points[1]])

    def ink(self) -> np.ndarray:
        return np.asarray(self.image, dtype=np.float32) / 255


def _pentagon(board: _Board, rng: np.random.Generator) -> None:
    angles = rng.uniform(0, 2 * np.pi) + np.arange(5) * 2 * np.pi / 5
    corners = [(0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a)) for a in angles]
    if rng.random() < 0.5:
        board.fill(corners)
    else:
        board.outline(corners)


def _moon(board: _Board, rng: np.random.Generator) -> None:
    """A fat crescent: a disc with an offset disc cut out, turned any way."""
    full = board.px([(0.05, 0.05), (0.95, 0.95)])
    board.pen.ellipse(full, fill=255)
    shift = rng.uniform(0.3, 0.45)
    angle = rng.uniform(0, 2 * np.pi)
    dx, dy = shift * math.cos(angle), shift * math.sin(angle)
    cut = board.px([(0.05 + dx, 0.05 + dy), (0.95 + dx, 0.95 + dy)])
    board.pen.ellipse(cut, fill=0)


def _cloud(board: _Board, rng: np.random.Generator) -> None:
    """Puffs along a flat base, filled or as an outline."""
    mask = Image.new("L", board.image.size, 0)
    pen = ImageDraw.Draw(mask)
    puffs = int(rng.integers(3, 6))
    for k in range(puffs):
        x = 0.2 + 0.6 * k / (puffs - 1)
        r = rng.uniform(0.14, 0.22) * (1.3 if 0 < k < puffs - 1 else 1.0)
        y = 0.62 - r * rng.uniform(0.3, 0.8)
        pen.ellipse(board.px([(x - r, y - r), (x + r, y + r)]), fill=255)
    pen.rectangle(board.px([(0.2, 0.5), (0.8, 0.72)]), fill=255)
    filled = np.asarray(mask) > 0
    if rng.random() < 0.5:
        filled &= ~ndimage.binary_erosion(filled, iterations=board.width)
    board.image = Image.fromarray(np.where(filled, 255, 0).astype(np.uint8))


def _lightning(board: _Board, rng: np.random.Generator) -> None:
    bolt = [(0.55, 0), (0.15, 0.55), (0.45, 0.55), (0.3, 1), (0.85, 0.4), (0.55, 0.4), (0.75, 0)]
    if rng.random() < 0.5:
        bolt = [(1 - x, y) for x, y in bolt]
    if rng.random() < 0.7:
        board.fill(bolt)
    else:
        board.outline(bolt)


def _house(board: _Board, rng: np.random.Generator) -> None:
    """A square body, a roof, a door (and perhaps a window)."""
    eaves = rng.uniform(0.35, 0.5)
    board.outline([(0.12, eaves), (0.88, eaves), (0.88, 1.0), (0.12, 1.0)])
    board.stroke([(0.0, eaves + 0.08), (0.5, 0.0), (1.0, eaves + 0.08)])
    door = rng.uniform(0.25, 0.4)
    board.pen.rectangle(board.px([(door, 0.68), (door + 0.16, 1.0)]), fill=255)
    if rng.random() < 0.6:
        top = eaves + 0.12
        board.pen.rectangle(board.px([(0.62, top), (0.75, top + 0.13)]), fill=255)


def _note(board: _Board, rng: np.random.Generator) -> None:
    """A musical note (filled head, stem, flag) or two notes under a beam."""
    heads = 1 if rng.random() < 0.5 else 2
    xs = [0.3] if heads == 1 else [0.15, 0.62]
    for x in xs:
        board.pen.ellipse(board.px([(x - 0.14, 0.72), (x + 0.14, 0.95)]), fill=255)
        board.stroke([(x + 0.12, 0.82), (x + 0.12, 0.08)])
    if heads == 2:
        board.fill([(0.27, 0.05), (0.74, 0.05), (0.74, 0.18), (0.27, 0.18)])
    else:
        board.stroke([(0.42, 0.08), (0.62, 0.3), (0.6, 0.5)])


def _envelope(board: _Board, rng: np.random.Generator) -> None:
    top, bottom = 0.5 - rng.uniform(0.25, 0.33), 0.5 + rng.uniform(0.25, 0.33)
    board.outline([(0.0, top), (1.0, top), (1.0, bottom), (0.0, bottom)])
    board.stroke([(0.0, top), (0.5, rng.uniform(0.5, 0.62)), (1.0, top)])


def _checkbox(board: _Board, rng: np.random.Generator) -> None:
    board.outline([(0.05, 0.05), (0.95, 0.05), (0.95, 0.95), (0.05, 0.95)])
    if rng.random() < 0.5:
        board.stroke([(0.22, 0.52), (0.42, 0.75), (0.8, 0.22)])
    else:
        board.stroke([(0.25, 0.25), (0.75, 0.75)])
        board.stroke([(0.75, 0.25), (0.25, 0.75)])


SHAPE_DRAWERS = {
    "pentagon": _pentagon,
    "moon": _moon,
    "cloud": _cloud,
    "lightning": _lightning,
    "house": _house,
    "note": _note,
    "envelope": _envelope,
    "checkbox": _checkbox,
}


def draw_shape(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    shape = _pick(rng, HELD_OUT_SHAPES)
    board = _Board(rng)
    SHAPE_DRAWERS[shape](board, rng)
    ink = np.asarray(board.image.rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR))
    return ink.astype(np.float32) / 255, shape


def draw_smiley(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """An emoticon in STIX, turned upright, or a filled face with its features cut out."""
    if rng.random() < 0.5:
        glyph, font = _pick(rng, list(SMILEY_GLYPHS)), _pick(rng, SYMBOL_FONTS)
        ink = _glyphs(glyph, font, int(rng.integers(90, 260)), rng)
        ink = np.rot90(ink, k=-1 if rng.random() < 0.5 else 1)
        return np.ascontiguousarray(ink), f"{SMILEY_GLYPHS[glyph]}-{font[:-4]}"
    board = _Board(rng)
    pen, side = board.pen, board.side
    pen.ellipse(board.px([(0.0, 0.0), (1.0, 1.0)]), fill=255)
    eye = side * rng.uniform(0.06, 0.09)
    for x in (0.35, 0.65):
        cx, cy = board.px([(x, 0.38)])[0]
        pen.ellipse((cx - eye, cy - 1.4 * eye, cx + eye, cy + 1.4 * eye), fill=0)
    pen.arc(board.px([(0.25, 0.35), (0.75, 0.78)]), 25, 155, fill=0, width=board.width)
    return board.ink(), "filled_face"


DRAWERS = {
    "letter": draw_letter,
    "word": draw_word,
    "symbol": draw_symbol,
    "shape": draw_shape,
    "smiley": draw_smiley,
}
