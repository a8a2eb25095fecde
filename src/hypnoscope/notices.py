"""Warnings as data: the one way hypnoscope tells a user that something about an input
is off.

A :class:`Notice` has a stable ``code`` (for scripts: ``units-rescaled``,
``channel-dropped``, ``bad-epochs``, ...), a human message naming the file, channel or
value, and a severity. Readers and stagers collect them in a :class:`Notices` list that
travels with the data (``PSGRecording.meta["notices"]``, ``StagingResult.info
["notices"]``) and ends up in the report (JSON ``notices``, and a banner at the top of the
HTML report). Each notice is logged once through :mod:`logging` when it is added -- never
as a Python ``warnings.warn`` with source lines. With ``strict=True`` (``--strict`` on the
command line) :func:`raise_if_strict` turns warnings into a :class:`StrictModeError`, for
batch pipelines that must not accept questionable input silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

logger = logging.getLogger("hypnoscope")

SEVERITIES = ("info", "warning")


@dataclass(frozen=True)
class Notice:
    """One thing a user should know about an input or a result.

    Attributes
    ----------
    code : str
        Stable identifier, e.g. ``"units-rescaled"``.
    message : str
        Full sentence naming the file, channel or value and what was expected.
    severity : {"warning", "info"}
        ``info`` notes what was done (e.g. a crop); ``warning`` says a result may be
        affected (and fails ``--strict``).
    channel : str or None
        The channel concerned, if any.
    """

    code: str
    message: str
    severity: str = "warning"
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return self.message


class Notices(list):
    """A list of :class:`Notice` that logs each one once when it is added."""

    def add(self, code: str, message: str, *, severity: str = "warning",
            channel: str | None = None) -> Notice:
        """Append a notice (an identical one already present is not repeated) and log it."""
        notice = Notice(code, message, severity, channel)
        if notice not in self:
            self.append(notice)
            logger.log(logging.WARNING if severity == "warning" else logging.INFO, message)
        return notice

    def extend_from(self, items: Iterable[Notice | dict]) -> Notices:
        """Add notices (or their dicts) from another list, without logging them again."""
        for item in items:
            n = item if isinstance(item, Notice) else Notice(**item)
            if n not in self:
                self.append(n)
        return self

    @property
    def warnings(self) -> list[Notice]:
        """The notices of severity ``warning``."""
        return [n for n in self if n.severity == "warning"]

    def messages(self, severity: str | None = None) -> list[str]:
        return [n.message for n in self if severity is None or n.severity == severity]

    def to_list(self) -> list[dict[str, Any]]:
        """JSON-ready list of dicts."""
        return [n.to_dict() for n in self]


class StrictModeError(ValueError):
    """Raised in strict mode when an input produced warnings."""

    def __init__(self, what: str, notices: Iterable[Notice]) -> None:
        self.notices = list(notices)
        lines = "; ".join(n.message for n in self.notices)
        super().__init__(f"{what}: {len(self.notices)} warning(s) in strict mode: {lines}")


def raise_if_strict(notices: Iterable[Notice], strict: bool, what: str) -> None:
    """Raise :class:`StrictModeError` if ``strict`` and any notice is a warning."""
    warn = [n for n in notices if n.severity == "warning"]
    if strict and warn:
        raise StrictModeError(what, warn)


def notices_of(meta: dict[str, Any] | None) -> Notices:
    """The :class:`Notices` list stored in a ``meta`` dict (created if absent)."""
    if meta is None:
        return Notices()
    got = meta.get("notices")
    if not isinstance(got, Notices):
        got = Notices().extend_from(got or [])
        meta["notices"] = got
    return got


def add_notice(meta: dict[str, Any], code: str, message: str, *, severity: str = "warning",
               channel: str | None = None) -> None:
    """Record a notice in ``meta["notices"]`` (logged once) and keep the message of a new
    warning in ``meta["warnings"]`` (what a reader or check noticed about a recording)."""
    before = len(notices_of(meta))
    notices_of(meta).add(code, message, severity=severity, channel=channel)
    if severity == "warning" and len(meta["notices"]) > before:
        meta.setdefault("warnings", []).append(message)


__all__ = ["Notice", "Notices", "StrictModeError", "add_notice", "raise_if_strict",
           "notices_of"]
