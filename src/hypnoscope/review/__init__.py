"""Review and correct an automatic scoring in the browser (``hypnoscope review``).

:class:`~hypnoscope.review.session.ReviewSession` (the recording, its automatic scoring and
the scorer's corrections, saved as a new scoring after every change) and
:mod:`hypnoscope.review.app` (the local web app: FastAPI served by uvicorn on 127.0.0.1,
with a random token). The web framework is the optional extra ``review``
(``pip install 'hypnoscope[review]'``); the session needs none of it.
"""

from hypnoscope.review.session import ReviewSession

__all__ = ["ReviewSession"]
