"""The held-out non-digit uploads: fixed, decodable, accepted by the pipeline, no training font."""

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from digitcore.preprocess import decode_image, preprocess
from testkit import nondigits
from testkit.nondigits import (
    HELD_OUT_FONTS,
    HELD_OUT_SHAPES,
    HELD_OUT_WORDS,
    KINDS,
    LETTERS,
    PICTOGRAPHS,
    SMILEY_GLYPHS,
    SYMBOL_FONTS,
    SYMBOLS,
    font_has_text,
    nondigit_uploads,
)
from trainer import outliers
from trainer.outliers import FONT_FOLDER, LOOKALIKE_LETTERS, TRAINING_FONTS, is_safe_text


@pytest.fixture(scope="module")
def made() -> tuple[list[nondigits.NonDigit], set[str]]:
    """The default set, built while every font file opened is recorded."""
    opened: set[str] = set()
    truetype = ImageFont.truetype

    def recording(font, *args, **kwargs):
        opened.add(Path(font).name)
        return truetype(font, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFont, "truetype", recording)
        uploads = nondigit_uploads()
    return uploads, opened


def test_the_set_is_fixed_and_a_smaller_one_is_its_prefix(made):
    uploads, _ = made
    assert len(uploads) == 400
    again = nondigit_uploads(30)
    assert [u.data for u in again] == [u.data for u in uploads[:30]]
    assert [u.data for u in nondigit_uploads(30, seed=8)] != [u.data for u in again]


def test_no_training_font_is_used(made):
    _, opened = made
    assert not set(HELD_OUT_FONTS) & set(TRAINING_FONTS)
    assert not any(name.startswith("DejaVu") for name in HELD_OUT_FONTS)
    assert all((FONT_FOLDER / name).is_file() for name in HELD_OUT_FONTS)
    assert opened and opened <= set(HELD_OUT_FONTS)


def test_what_is_drawn_is_held_out_and_never_a_lookalike():
    assert not set(HELD_OUT_SHAPES) & set(outliers.SHAPES)
    assert not set(LETTERS) & set(LOOKALIKE_LETTERS)
    assert not set(SYMBOLS + PICTOGRAPHS) & set("!|/\\©®☺¶0123456789")
    assert all(is_safe_text(word) for word in HELD_OUT_WORDS)
    assert all(font_has_text(font, LETTERS) for font in HELD_OUT_FONTS)
    assert all(font_has_text(font, SYMBOLS) for font in SYMBOL_FONTS)
    assert font_has_text("STIXGeneral.ttf", PICTOGRAPHS)
    assert all(font_has_text(font, "".join(SMILEY_GLYPHS)) for font in SYMBOL_FONTS)


def test_every_kind_is_present_in_equal_numbers(made):
    uploads, _ = made
    assert Counter(u.kind for u in uploads) == {kind: 400 // len(KINDS) for kind in KINDS}


def test_every_upload_decodes_as_a_client_file(made):
    uploads, _ = made
    formats, modes = Counter(), Counter()
    for upload in uploads:
        decoded = decode_image(upload.data)
        assert decoded.width >= 28 and decoded.height >= 28
        with Image.open(io.BytesIO(upload.data)) as image:
            formats[image.format] += 1
            modes[image.mode] += 1
    assert set(formats) == {"PNG", "JPEG"}
    assert modes["RGBA"] > 0  # transparent canvases among them


def test_the_pipeline_accepts_nearly_all_of_them(made):
    uploads, _ = made
    results = preprocess([u.data for u in uploads])
    refused = Counter(
        u.kind for u, r in zip(uploads, results, strict=True) if isinstance(r, Exception)
    )
    assert sum(refused.values()) <= 0.05 * len(uploads), refused
    accepted = [r[1] for r in results if not isinstance(r, Exception)]
    assert all(np.asarray(mnist).max() > 0.5 for mnist in accepted)
