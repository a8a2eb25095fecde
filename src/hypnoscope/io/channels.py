"""Channel roles from channel names, and the derivations cohort labels stand for.

Roles (``"eeg"``, ``"eog"``, ``"emg"``) are resolved from channel names by
:func:`resolve_channels` (Sleep-EDF labels such as ``EEG Fpz-Cz``, ``EOG horizontal``,
``EMG submental`` and AASM-style labels such as ``C4-M1``, ``E1-M2``, ``LOC``,
``Chin1-Chin2``, and names padded with dots as in PhysioNet's EEG Motor Movement/Imagery
files, ``C3..``, ``Fpz.``; :func:`guess_role`). Every channel that matches a role is used, so
multimodal input is the default whenever the channels exist; ``eeg=``/``eog=``/``emg=``
override the automatic choice (``[]`` drops a modality). A requested channel that does
not exist raises a ``ValueError`` that lists the channels in the file; the same channel
given twice, or a channel whose name says chin EMG (``EMG submental``, ``Chin1-Chin2``,
``EMG1-EMG2``, ``LCHIN`` ...) given as EEG or EOG, is an error naming it.

:func:`channel_derivation` gives the EEG derivation of a cohort label (SHHS ``EEG(sec)``
is C3-A2) and :func:`eeg_region` the scalp region of an EEG derivation (anterior: the
Fpz-Cz slot of the band-power models; posterior: the Pz-Oz slot).
"""

from __future__ import annotations

import difflib
import re

ROLES: tuple[str, ...] = ("eeg", "eog", "emg")

_ELECTRODE = (r"(fp[z12]|af[z3478]|f[z1-8]|fc[z1-6]|c[z1-6]|cp[z1-6]|t[3-8]|tp[78]|p[z1-8]|"
              r"po[z3478]|o[z12])")
_REF = r"(m[12]|a[12]|[ms]1?2?|avg|ref|cz|oz|fpz|pz|" + _ELECTRODE + r")"
_EEG_RE = re.compile(rf"^{_ELECTRODE}(\s*[-:/]\s*{_REF})?$")
_EOG_RE = re.compile(r"^(e[12]|loc|roc|leog|reog|eogl|eogr|eog[_ ]?[lr]|[lr][_ -]?eog|"
                     r"eye[_ ]?[lr]|[lr][_ -]?eye)(\s*[-:/]\s*(m[12]|a[12]|fpz|ref))?$")
_CHIN = r"([lrc]\s*[-_ ]?\s*chin[0-9]?|chin\s*[-_ ]?\s*[0-9lrc]?|emg[0-9]?)"
_EMG_RE = re.compile(rf"^({_CHIN}(\s*[-:/]\s*{_CHIN})?|submental(is)?|ment(alis)?|"
                     r"emg\s*chin[0-9]?|chin\s*emg|subm|emg\s*submental(is)?)$")
_NOT_CHIN = re.compile(r"leg|tib|lat\b|rat\b|arm|ecg|ekg|resp|temp|event|marker|snore|"
                       r"spo2|sao2|pleth|pulse|flow|thor|abd|position|light|pressure")

#: SHHS channel labels (Compumedics, as in the NSRR SHHS EDFs) and the EEG derivation each
#: stands for: ``EEG`` is C4-A1, ``EEG(sec)`` (``EEG2``, ``EEG 2``, ``EEG sec`` in some
#: files) is C3-A2. Their roles come from :func:`guess_role` like any other name
#: (``EEG*`` -> eeg, ``EOG(L)``/``EOG(R)`` -> eog, ``EMG`` -> emg).
SHHS_DERIVATIONS: dict[str, str] = {"eeg": "C4-A1", "eeg(sec)": "C3-A2", "eeg2": "C3-A2",
                                    "eeg 2": "C3-A2", "eeg sec": "C3-A2"}


def _norm(name: str) -> str:
    """Lower-case name for matching: ``_`` and runs of spaces as one space, and trailing
    padding dots dropped (PhysioNet EEGMMI pads names to 4 characters: ``C3..``, ``Fpz.``);
    a name of only dots is kept as it is."""
    n = re.sub(r"\s+", " ", str(name).strip().lower().replace("_", " "))
    return n.rstrip(".").rstrip() or n


def channel_derivation(name: str) -> str | None:
    """The EEG derivation a cohort label stands for (``EEG(sec)`` -> ``C3-A2``, see
    :data:`SHHS_DERIVATIONS`), or None for names that spell their own."""
    return SHHS_DERIVATIONS.get(_norm(name))


def guess_role(name: str) -> str | None:
    """Role (``"eeg"``, ``"eog"``, ``"emg"``) suggested by a channel name, or None.

    Recognises Sleep-EDF labels (``EEG Fpz-Cz``, ``EOG horizontal``, ``EMG submental``),
    AASM labels (``C4-M1``, ``F4-M1``, ``O2-M1``, ``E1-M2``, ``LOC``, ``Chin1-Chin2``),
    common chin-EMG labels (``Chin``, ``CHIN1``, ``EMG1-EMG2``, ``LCHIN``, ``Chin-L``,
    ``Submentalis``), names prefixed with the modality (``EEG C3-A2``, ``EMG chin``) and
    the SHHS labels (``EEG``, ``EEG(sec)``/``EEG2``, ``EOG(L)``, ``EOG(R)``, ``EMG``; see
    :data:`SHHS_DERIVATIONS`).
    Leg EMG, ECG, respiration, temperature and event channels are not matched.
    """
    n = _norm(name)
    if _NOT_CHIN.search(n):
        return None
    if _EMG_RE.match(n):  # before the prefix rule: "EMG1-EMG2", "EMG chin"
        return "emg"
    for prefix in ("eeg", "eog", "emg"):  # "EEG C3-A2", "EOG(L)", "EEG(sec)", "EEG2"
        if n == prefix or re.match(rf"^{prefix}(\b|\d)", n):
            return prefix
    if _EEG_RE.match(n):
        return "eeg"
    if _EOG_RE.match(n) or "horizontal" in n or "vertical" in n:
        return "eog"
    if _EMG_RE.match(n):
        return "emg"
    return None


def _as_list(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if value is None:
        return None
    if value is False:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _missing_channel_error(name: str, role: str, ch_names: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, ch_names, n=3, cutoff=0.5)
    hint = f"; did you mean {close}?" if close else ""
    return ValueError(f"{role.upper()} channel {name!r} not found{hint}. "
                      f"Channels found: {list(ch_names)}")


def resolve_channels(ch_names: list[str], eeg: str | list[str] | None = None,
                     eog: str | list[str] | None = None, emg: str | list[str] | None = None,
                     ) -> dict[str, list[str]]:
    """Map each role to the channel names to use.

    Parameters
    ----------
    ch_names : list of str
        Channel labels of the recording.
    eeg, eog, emg : str, list of str or None
        Overrides. ``None`` (default) picks every channel whose name suggests the role
        (:func:`guess_role`); a name, a comma-separated string or a list selects those
        channels (case-insensitive); ``[]`` selects none for that role.

    Returns
    -------
    dict
        ``{"eeg": [...], "eog": [...], "emg": [...]}`` with the labels as spelled in
        ``ch_names``, in file order for automatic picks and in the given order for
        overrides.

    Raises
    ------
    ValueError
        If an override names a channel that is not in ``ch_names``, names the same
        channel twice (``--eeg X X``), gives a channel two roles, or gives a channel
        whose name says chin EMG (:func:`guess_role`) as EEG or EOG, or if no channel at
        all could be assigned; the message names the channel and lists those found.
    """
    ch_names = [str(c) for c in ch_names]
    lookup: dict[str, str] = {}
    for c in ch_names:
        lookup.setdefault(_norm(c), c)
    overrides = {"eeg": _as_list(eeg), "eog": _as_list(eog), "emg": _as_list(emg)}
    chosen: dict[str, list[str]] = {}
    for role in ROLES:
        names = overrides[role]
        if names is None:
            continue
        picked = []
        for name in names:
            key = _norm(name)
            if key not in lookup:
                # accept the label without its modality prefix ("Fpz-Cz" for "EEG Fpz-Cz")
                alt = [c for c in ch_names if _norm(c) in (f"{role} {key}", f"{role}{key}")]
                if len(alt) != 1:
                    raise _missing_channel_error(name, role, ch_names)
                got = alt[0]
            else:
                got = lookup[key]
            if got in picked:
                same = "" if name == got else f" ({name!r} is {got!r})"
                raise ValueError(f"{role.upper()} channel {got!r} was given twice{same}; "
                                 f"give each channel once. Channels found: {ch_names}")
            if role in ("eeg", "eog") and guess_role(got) == "emg":
                raise ValueError(
                    f"channel {got!r} was given as {role.upper()} but its name says chin "
                    f"EMG; give an {role.upper()} channel (--{role}) or pass it as EMG "
                    f"(--emg). Channels found: {ch_names}")
            picked.append(got)
        chosen[role] = picked
    taken = {c for names in chosen.values() for c in names}
    for role in ROLES:
        if role in chosen:
            continue
        chosen[role] = [c for c in ch_names if guess_role(c) == role and c not in taken]
    seen: dict[str, str] = {}
    for role in ROLES:
        for c in chosen[role]:
            if c in seen and seen[c] != role:
                raise ValueError(f"channel {c!r} was given two roles ({seen[c]} and {role})")
            seen[c] = role
    if not any(chosen.values()):
        raise ValueError("no EEG, EOG or EMG channel recognised; name them with eeg=, eog=, "
                         f"emg= (--eeg/--eog/--emg). Channels found: {ch_names}")
    return {role: chosen[role] for role in ROLES}


_EEG_SITE = re.compile(r"^(?:eeg\s*)?(fp|af|fc|f|cp|c|tp|t|po|p|o)(?:z|\d+)")
_ANTERIOR, _POSTERIOR = {"fp", "af", "f", "fc", "c"}, {"p", "po", "o"}


def eeg_region(name: str) -> str | None:
    """``"anterior"`` (Fp, AF, F, FC, C: the Fpz-Cz slot), ``"posterior"`` (P, PO, O:
    the Pz-Oz slot) or None (temporal, CP, unknown) from the first electrode of an EEG
    channel name (``EEG Fpz-Cz`` -> anterior, ``O2-M1`` -> posterior; cohort labels by
    their derivation, SHHS ``EEG(sec)`` -> C3-A2 -> anterior)."""
    name = channel_derivation(name) or name
    m = _EEG_SITE.match(_norm(name))
    if not m:
        return None
    site = m.group(1)
    return "anterior" if site in _ANTERIOR else "posterior" if site in _POSTERIOR else None

