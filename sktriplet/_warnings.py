"""Where a warning points: at the user's line, whichever path led to it."""

from __future__ import annotations

import os
import sys

# Frames in these packages are never the user's: sktriplet itself, and the
# scikit-learn and joblib code that calls it (``_fit_context``, a search).
_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (
        __file__,
        *(
            getattr(sys.modules.get(name), "__file__", None) or __file__
            for name in ("sklearn", "joblib")
        ),
    )
)


def user_stacklevel() -> int:
    """The ``stacklevel`` at which a warning raised by the caller points at the
    first frame outside sktriplet, scikit-learn and joblib.

    ``fit``, ``partial_fit`` and a ``GridSearchCV`` reach the same warning
    through different numbers of frames; a fixed ``stacklevel`` is right on one
    path only.
    """
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level
