"""Digits as people send them, through the real HTTP API: each realistic set scores >= 98%,
and >= 97% of each set is answered ``is_digit: true``; >= 85% of the held-out non-digits
(letters, words, symbols, shapes and smileys in fonts and forms training never saw) are not.
(The goals are 98% and 95%; `python -m bench.nondigits` gives the figures.)

The sets (testkit/realistic.py) are made from MNIST *test* images with a fixed seed: photos of
ink on paper, transparent and white canvases, marker, pencil, non-square frames, phone
photos, whole pages, shadows, fingers and more. They go to a real ``python -m service`` as
multipart uploads, in requests of up to 16 files.
"""

from __future__ import annotations

import pytest

from testkit.batches import batch_answers
from testkit.nondigits import nondigit_uploads
from testkit.realistic import BELOW_GOAL, SETS, generate
from testkit.servers import serve


@pytest.fixture(scope="module")
def server(tmp_path_factory, default_model_path):
    with serve(tmp_path_factory.mktemp("realistic"), model_path=str(default_model_path)) as running:
        yield running


def served(server, mnist_test, name: str) -> tuple[list, list, int]:
    """The ``name`` set sent to the server: its samples, the answers, how many were right."""
    images, labels = (t.numpy() for t in mnist_test)
    samples = list(generate(name, images, labels))
    found = batch_answers(server.url, samples)
    right = sum(
        a is not None and a["digit"] == s.label for a, s in zip(found, samples, strict=True)
    )
    return samples, found, right


@pytest.mark.parametrize("name", list(SETS))
def test_each_realistic_set_scores_at_least_98_percent(server, mnist_test, name):
    samples, found, right = served(server, mnist_test, name)
    assert len(found) == len(samples) == SETS[name][1]
    assert right / len(samples) >= 0.98, f"{name}: {right}/{len(samples)} right"
    digits = sum(a is not None and a["is_digit"] for a in found)
    assert digits / len(samples) >= 0.97, f"{name}: {digits}/{len(samples)} taken for digits"


# the goal is 98 %; measured (bench.wild, the default model): shadow_edge 98.7 %, finger 98.0 %
# (at the goal's edge or just above it: a retraining moves such a set by a few images)
BELOW_GOAL_FLOORS = {"shadow_edge": 0.95, "finger": 0.95}


@pytest.mark.parametrize("name", list(BELOW_GOAL))
def test_each_set_below_the_goal_stays_above_its_floor(server, mnist_test, name):
    samples, _, right = served(server, mnist_test, name)
    assert right / len(samples) >= BELOW_GOAL_FLOORS[name], f"{name}: {right}/{len(samples)}"


def test_held_out_non_digits_are_flagged(server):
    samples = nondigit_uploads()
    found = batch_answers(server.url, samples)
    flagged = [a is None or not a["is_digit"] for a in found]
    missed = [s.name for s, f in zip(samples, flagged, strict=True) if not f]
    assert sum(flagged) / len(samples) >= 0.85, f"taken for digits: {missed}"
