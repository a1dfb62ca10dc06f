"""A long fit says how long it will take, even at verbose=0; a short one stays silent."""

import io

import numpy as np
import pytest
import torch

from skefh import NNEFH
from skefh.training import DurationNotice


def _feed(notice, seconds):
    notice.on_fit_begin(None)
    for update, s in enumerate(seconds, start=1):
        notice.on_update_end(None, {"update": update, "seconds": s})


def test_a_long_fit_is_announced_once_from_the_pace_after_the_first_update():
    out = io.StringIO()
    notice = DurationNotice(1000, n_timed=5, desc="NNEFH", file=out)
    # The first update (set-up costs) is not timed: 30 s there must not enter the pace.
    _feed(notice, [30.0] + [1.2] * 20)
    # 994 remaining updates at 1.2 s each.
    assert notice.projected_seconds == pytest.approx(994 * 1.2)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "[NNEFH] 1,000 updates: about 20 more minutes" in lines[0]


def test_a_short_fit_is_silent():
    out = io.StringIO()
    notice = DurationNotice(1000, file=out)
    _feed(notice, [5.0] + [0.01] * 10)
    assert notice.projected_seconds == pytest.approx(994 * 0.01)
    assert out.getvalue() == ""


@pytest.mark.parametrize("verbose, expected", [(0, True), (-1, False), (1, False)])
def test_the_estimator_adds_the_notice_at_verbose_zero_only(verbose, expected):
    est = NNEFH(n_components=4, n_statistics=4, n_filters=2, max_iter=1, verbose=verbose, random_state=0)
    est.fit(np.random.default_rng(0).random((16, 64)))
    names = [type(c).__name__ for c in est._callbacks(10, is_main=True, rows=torch.zeros(16, 1, 8, 8))]
    assert ("DurationNotice" in names) is expected
    assert ("ProgressBar" in names) is (verbose > 0)
