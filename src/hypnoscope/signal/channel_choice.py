"""Which channels of a recording feed the band-power models.

:func:`select_bandpower_channels` picks the channels of
:data:`hypnoscope.signal.bandpower.CHANNEL_LAYOUT` (two EEG, one EOG) or of a channel
setup's subset of it, by role and by the scalp region of the EEG derivation
(:func:`hypnoscope.io.channels.eeg_region`), and says which channels it leaves out.
"""

from __future__ import annotations

from typing import Any

from hypnoscope.io.channels import eeg_region


def _rank(name: str, prefs: tuple[str, ...]) -> int:
    n = name.lower().replace("eeg", "").strip()
    for k, p in enumerate(prefs):
        if n.startswith(p):
            return k
    return len(prefs)


def select_bandpower_channels(ch_names: list[str], roles: list[str],
                              channels_found: list[str] | None = None,
                              source: str = "recording", explicit: bool = False,
                              notices: Any = None, n_eeg: int = 2, n_eog: int = 1,
                              ) -> list[int]:
    """Indices of the channels for :data:`CHANNEL_LAYOUT` (two EEG, one EOG), or for a
    subset of it (``n_eeg`` EEG and ``n_eog`` EOG channels, see
    :data:`hypnoscope.staging.channel_setups.CHANNEL_SETUPS`; one EEG takes the Fpz-Cz slot).

    With more than two EEG channels and no explicit choice, the frontal/central one
    nearest to Fpz-Cz takes the first slot and the parietal/occipital one nearest to
    Pz-Oz the second; with an explicit choice the first two given are used. If the two
    are then in swapped order by name (a parietal/occipital channel first, a
    frontal/central one second, see :func:`eeg_region`) they are swapped back, with a
    ``channels-reordered`` info notice: the model was trained with Fpz-Cz first. The
    channels left out (more EEG, a second EOG, EMG) each get a ``channel-ignored`` info
    notice. Notices go to ``notices`` (a :class:`hypnoscope.notices.Notices`) when
    given. Raises a ``ValueError`` that lists the channels found when the EEG or EOG
    channels the setup needs are missing.
    """
    eeg = [i for i, r in enumerate(roles) if r == "eeg"]
    eog = [i for i, r in enumerate(roles) if r == "eog"]
    if len(eeg) < n_eeg or len(eog) < n_eog:
        found = channels_found if channels_found is not None else list(ch_names)
        have = ", ".join(f"{n} ({r})" for n, r in zip(ch_names, roles, strict=False)) or "none"
        need = {(2, 1): "two EEG channels (Fpz-Cz and Pz-Oz, or the nearest derivations) "
                        "and one EOG channel",
                (2, 0): "two EEG channels (Fpz-Cz and Pz-Oz, or the nearest derivations)",
                (1, 1): "one EEG channel and one EOG channel",
                (1, 0): "one EEG channel"}[(n_eeg, n_eog)]
        raise ValueError(
            f"{source}: this band-power model needs {need}, but only these were "
            f"recognised: {have}. Channels found: {list(found)}. Choose them with eeg=[...] "
            "and eog=... (CLI: --eeg CH [CH] --eog CH), or stage with --model auto to use "
            "the shipped model these channels allow")
    if n_eeg == 1:
        first = eeg[0] if explicit else min(
            eeg, key=lambda i: (_rank(ch_names[i], ("fpz", "fp", "fz", "f", "cz", "c")), i))
        return _report_unused(ch_names, roles, [first] + eog[:n_eog], add=(
            notices.add if notices is not None else None), source=source)
    if not explicit and len(eeg) > 2:
        first = min(eeg, key=lambda i: (_rank(ch_names[i], ("fpz", "fp", "fz", "f", "cz", "c")),
                                        i))
        rest = [i for i in eeg if i != first]
        second = min(rest, key=lambda i: (_rank(ch_names[i], ("pz", "po", "oz", "o", "p")), i))
        eeg = [first, second]
    a, b = eeg[0], eeg[1]
    add = notices.add if notices is not None else (lambda *args, **kw: None)
    if eeg_region(ch_names[a]) == "posterior" and eeg_region(ch_names[b]) == "anterior":
        a, b = b, a
        add("channels-reordered",
            f"{source}: EEG channels {ch_names[b]!r}, {ch_names[a]!r} were given "
            "parietal/occipital first; the band-power model expects the frontal/central "
            f"channel first (like Fpz-Cz) and the parietal/occipital one second (like "
            f"Pz-Oz), so {ch_names[a]!r} is used first and {ch_names[b]!r} second",
            severity="info")
    return _report_unused(ch_names, roles, [a, b] + eog[:n_eog],
                          add=notices.add if notices is not None else None, source=source)


def _report_unused(ch_names: list[str], roles: list[str], used: list[int], add,
                   source: str) -> list[int]:
    """``used``, after a ``channel-ignored`` info notice for every other channel."""
    n_eeg = sum(roles[i] == "eeg" for i in used)
    n_eog = len(used) - n_eeg
    what = {(2, 1): "two EEG channels and one EOG channel", (2, 0): "two EEG channels",
            (1, 1): "one EEG channel and one EOG channel",
            (1, 0): "one EEG channel"}.get((n_eeg, n_eog), f"{len(used)} channels")
    names = ", ".join(repr(ch_names[i]) for i in used)
    for i, (name, role) in enumerate(zip(ch_names, roles, strict=True)):
        if i not in used and add is not None:
            why = (f"the band-power model uses {what}" if role in ("eeg", "eog") else
                   "the band-power model uses EEG and EOG only")
            add("channel-ignored", f"{source}: channel {name!r} ({role}) is not used: {why} "
                f"({names})", severity="info", channel=name)
    return used

