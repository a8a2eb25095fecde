"""Channel setups of the band-power models: which channels a shipped model reads.

The real band-power set has three channels (:data:`hypnoscope.signal.bandpower.CHANNEL_LAYOUT`:
EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal). A shipped model is trained on a subset of them
(its *setup*), so that recordings with fewer channels can be staged too: a headband's one
frontal EEG, a wearable's EEG + EOG, a montage without EOG. :data:`CHANNEL_SETUPS` is the
one table of those subsets; :func:`setup_for_roles` says which setups a recording's
channel roles allow, and :func:`setup_of_card` which setup a model card describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypnoscope.signal.bandpower import CHANNEL_LAYOUT, CHANNEL_ROLES


@dataclass(frozen=True)
class ChannelSetup:
    """A subset of the band-power channel layout.

    Attributes
    ----------
    name : str
        Setup name; the shipped model trained on it has the same name.
    slots : tuple of int
        Indices into :data:`~hypnoscope.signal.bandpower.CHANNEL_LAYOUT`, in model input order.
    description : str
        What a recording needs, in words (model cards, messages).
    pool : tuple of tuple of int
        Other layout channels trained as the same inputs (channel sampling, as U-Sleep
        trains on any derivation): ``((1,),)`` for a one-EEG setup trains its EEG slot on
        Fpz-Cz and on Pz-Oz alike, so that the model is not tied to one derivation.
        :func:`setup_nights` makes one view of every night per entry.
    """

    name: str
    slots: tuple[int, ...]
    description: str
    pool: tuple[tuple[int, ...], ...] = ()

    @property
    def channels(self) -> list[str]:
        """Training channel names of the slots (``EEG Fpz-Cz`` ...)."""
        return [CHANNEL_LAYOUT[i] for i in self.slots]

    @property
    def roles(self) -> list[str]:
        """Roles of the slots (``eeg``/``eog``)."""
        return [CHANNEL_ROLES[i] for i in self.slots]

    @property
    def n_eeg(self) -> int:
        return self.roles.count("eeg")

    @property
    def n_eog(self) -> int:
        return self.roles.count("eog")


#: Every setup, richest first; the shipped model of each has the setup's name.
CHANNEL_SETUPS: dict[str, ChannelSetup] = {s.name: s for s in (
    ChannelSetup("default", (0, 1, 2), "two EEG channels (Fpz-Cz and Pz-Oz, or the nearest "
                 "frontal/central and parieto-occipital derivations) and one EOG channel"),
    ChannelSetup("eeg1-eog", (0, 2), "one EEG channel (Fpz-Cz, or the nearest frontal/"
                 "central derivation) and one EOG channel"),
    ChannelSetup("eeg2", (0, 1), "two EEG channels (Fpz-Cz and Pz-Oz, or the nearest "
                 "frontal/central and parieto-occipital derivations), no EOG"),
    ChannelSetup("eeg1", (0,), "one EEG channel (any derivation: frontal, central or "
                 "parieto-occipital; trained on Fpz-Cz and Pz-Oz alike), no EOG",
                 pool=((1,),)),
)}


def setup_nights(nights, setup: ChannelSetup | str, pool: bool = True) -> list:
    """The band-power nights as a setup's model reads them: only the setup's channels
    (views of the features, channel names in the metadata following), and with ``pool``
    one more view of every night per :attr:`ChannelSetup.pool` entry, whose channels
    take the setup's slots (named after the slots, the derivation in
    ``meta["derivations"]``; night id suffixed ``~<derivation>``; same subject, so that
    subject-wise splits keep a night's views together)."""
    from dataclasses import replace

    setup = CHANNEL_SETUPS[setup] if isinstance(setup, str) else setup
    out = []
    for slots in (setup.slots, *(setup.pool if pool else ())):
        real = [CHANNEL_LAYOUT[i] for i in slots]
        tag = "" if slots == setup.slots else "~" + "+".join(real)
        out += [replace(n, X=n.X[:, list(slots)], channels=setup.channels,
                        night_id=f"{n.night_id}{tag}",
                        meta={**n.meta, "channel_names": setup.channels,
                              "derivations": real}) for n in nights]
    return out


def setup_of_card(card: dict[str, Any]) -> ChannelSetup:
    """The setup whose channels a band-power model card lists (``input.channels``); a
    card without them is the full layout (models trained before setups existed)."""
    chans = list((card.get("input") or {}).get("channels") or CHANNEL_LAYOUT)
    for s in CHANNEL_SETUPS.values():
        if s.channels == chans:
            return s
    raise ValueError(f"model {card.get('name', 'model')!r}: its input channels {chans} are "
                     f"not a channel setup of the band-power layout {list(CHANNEL_LAYOUT)}")


def setup_for_roles(roles: list[str], ch_names: list[str] | None = None,
                    ) -> list[ChannelSetup]:
    """The setups a recording with these channel roles can feed, richest first (more
    channels first; among equals in :data:`CHANNEL_SETUPS` order).

    With ``ch_names``, a two-EEG setup also needs an EEG channel for its second slot
    (trained on Pz-Oz) that is not frontal/central by name
    (:func:`hypnoscope.io.channels.eeg_region`: parieto-occipital or unknown): two central
    channels (SHHS's C3-A2 and C4-A1) or two frontal ones (a headband's) feed the
    one-EEG setups.
    """
    from hypnoscope.io.channels import eeg_region

    n_eeg, n_eog = roles.count("eeg"), roles.count("eog")
    if ch_names is not None and n_eeg >= 2 and all(
            eeg_region(c) == "anterior" for c, r in zip(ch_names, roles, strict=True)
            if r == "eeg"):
        n_eeg = 1
    ok = [s for s in CHANNEL_SETUPS.values() if s.n_eeg <= n_eeg and s.n_eog <= n_eog]
    return sorted(ok, key=lambda s: -len(s.slots))
