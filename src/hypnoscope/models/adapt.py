"""Adapting a fitted staging model to a lab's reviewed nights.

A lab that reviews the automatic scoring (``hypnoscope review``) ends up with nights
scored by its own scorers on its own amplifiers and population. :func:`adapt_model` turns
such nights into an :class:`AdaptedModel` by one of :data:`METHODS`:

- ``"boost"``: continue boosting the LightGBM estimator(s) of a feature model on the
  lab's epochs (LightGBM ``init_model``): further trees, fitted to what the model still
  gets wrong on the lab, on top of the unchanged ones;
- ``"refit"``: fit the model's configuration again on its original training nights plus
  the lab's nights, each lab night counted ``weight`` times (needs the training nights);
- ``"recalibrate"``: keep the model and fit a temperature and one log-probability bias
  per stage on the lab's nights (any model; the per-recording feature normalisation
  already sits inside the feature models' temporal context).

Which one to use is a measurement (``benchmarks/adapt``, results in
``benchmarks/results/adapt.md``): :data:`DEFAULT_METHOD` with :data:`METHOD_DEFAULTS` is
the candidate chosen there on validation subjects of a held-out group of real subjects.

An adapted model records what it was adapted on (:attr:`AdaptedModel.adaptation`: base
model, method, options, night ids, subjects and a digest of every night) and refuses to
be evaluated on those nights (:func:`refuse_adaptation_nights`, used by
``hypnoscope evaluate`` and :func:`evaluate_adapted`). :func:`load_reviewed_nights`
reads a folder of recordings with their reviewed scorings (``*.reviewed.tsv``) or
ordinary hypnograms into nights of the model's input.
"""

from __future__ import annotations

import copy
import dataclasses
import glob
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from hypnoscope.io.recordings import REVIEW_SUFFIXES
from hypnoscope.models.base import MemberModel, StagingModel
from hypnoscope.stages import UNSCORED

#: Adaptation methods (see the module docstring).
METHODS = ("boost", "refit", "recalibrate")
#: The method ``hypnoscope adapt`` uses unless told otherwise: the candidate chosen on the
#: validation lab subjects of ``benchmarks/adapt`` (``benchmarks/results/adapt.md``), with
#: the options of :data:`METHOD_DEFAULTS`.
DEFAULT_METHOD = "recalibrate"
#: Options of each method and their defaults.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "boost": {"rounds": 100, "learning_rate": 0.03, "num_leaves": 15,
              "min_data_in_leaf": 50, "feature_fraction": 0.4, "lambda_l2": 1.0},
    "refit": {"weight": 10},
    # l2 / (scored epochs) weighs the squared bias and log-temperature: a few nights move
    # them little, hundreds of nights let the lab's data decide
    "recalibrate": {"l2": 1000.0},
}
#: Suffix of the reviewed scorings ``hypnoscope review`` writes (in the recording's review
#: folder, or copied beside the recording).
REVIEWED_SUFFIX = "." + REVIEW_SUFFIXES["tsv"]


# ------------------------------------------------------------------ identity of nights
def night_digest(night) -> str:
    """SHA-1 of a night's labels and inputs: the same night read the same way has the same
    digest, whatever its file is called."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(np.asarray(night.y, dtype=np.int64)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(night.X, dtype=np.float32)).tobytes())
    return h.hexdigest()


def adaptation_record(nights, base_name: str, method: str, options: dict[str, Any],
                      members: list[str] | None) -> dict[str, Any]:
    """What an adapted model records of its adaptation (see :attr:`AdaptedModel.adaptation`)."""
    scored = [int((np.asarray(n.y) >= 0).sum()) for n in nights]
    return {"base_model": base_name, "method": method, "options": dict(options),
            "members": members,
            "night_ids": [str(n.night_id) for n in nights],
            "subjects": sorted({str(n.subject_id) for n in nights}),
            "sources": [str((n.meta or {}).get("scoring") or (n.meta or {}).get("source")
                            or n.night_id) for n in nights],
            "digests": [night_digest(n) for n in nights],
            "n_scored_epochs": int(sum(scored))}


# ------------------------------------------------------------------ the adapted model
class AdaptedModel(MemberModel):
    """A staging model adapted to a lab's nights; stages like its base model.

    Parameters
    ----------
    model : StagingModel
        The adapted model (for ``"boost"``/``"refit"`` a copy of the base with new
        estimators; for ``"recalibrate"`` the base itself).
    adaptation : dict
        :func:`adaptation_record` of the adaptation.
    log_bias : ndarray, optional
        ``"recalibrate"``: per-stage log-probability bias.
    temperature : float
        ``"recalibrate"``: the base's log-probabilities are divided by it.
    name : str
    """

    def __init__(self, model: StagingModel, adaptation: dict[str, Any],
                 log_bias: np.ndarray | None = None, temperature: float = 1.0,
                 name: str = "adapted") -> None:
        super().__init__(n_classes=model.n_classes, adaptation=adaptation)
        self.model, self.adaptation, self.name = model, dict(adaptation), name
        self.log_bias = None if log_bias is None else np.asarray(log_bias, dtype=float)
        self.temperature = float(temperature)
        self.metadata = {**copy.deepcopy(getattr(model, "metadata", {}) or {}),
                         "model": name, "adaptation": self.adaptation}

    @property
    def members_(self) -> tuple[StagingModel]:
        return (self.model,)

    def fit(self, nights, val_nights=None) -> AdaptedModel:
        raise RuntimeError("an adapted model is made by hypnoscope.models.adapt.adapt_model, "
                           "not fitted")

    def predict_proba(self, night, rows=None) -> np.ndarray:
        """The base's probabilities, recalibrated where the method is ``"recalibrate"``."""
        p = (self.model.predict_proba(night) if rows is None
             else self.model.predict_proba(night, rows=rows))
        if self.log_bias is None:
            return p
        return _calibrated(np.asarray(p, dtype=float), self.log_bias, self.temperature)

    def check_evaluation_nights(self, nights) -> None:
        """Raise ``ValueError`` naming every night of ``nights`` this model was adapted on
        (same night id or same content)."""
        ids = set(self.adaptation.get("night_ids") or [])
        digests = set(self.adaptation.get("digests") or [])
        hit = [n for n in nights if str(n.night_id) in ids or night_digest(n) in digests]
        if hit:
            names = ", ".join(str((n.meta or {}).get("source") or n.night_id) for n in hit)
            raise ValueError(
                f"model {self.name!r} was adapted on {len(hit)} of these {len(nights)} "
                f"nights ({names}); scores on them would not estimate how it stages the "
                "lab's other nights. Evaluate it on nights it was not adapted on")


def refuse_adaptation_nights(model, nights) -> None:
    """Raise ``ValueError`` if ``model`` is an :class:`AdaptedModel` adapted on any of
    ``nights`` (other models: nothing to check)."""
    check = getattr(model, "check_evaluation_nights", None)
    if check is not None:
        check(list(nights))


def evaluate_adapted(model, nights) -> dict[str, Any]:
    """:func:`hypnoscope.evaluation.metrics.evaluate` of ``model`` on the scored epochs of
    ``nights`` (pooled), refusing the nights it was adapted on."""
    from hypnoscope.evaluation.metrics import evaluate

    nights = list(nights)
    refuse_adaptation_nights(model, nights)
    y = np.concatenate([n.y for n in nights])
    pred = np.concatenate([np.asarray(model.predict(n)) for n in nights])
    return evaluate(y, pred, n_classes=model.n_classes)


# ------------------------------------------------------------------ feature members
def _feature_members(model, members: list[str] | None) -> dict[str, Any]:
    """``{role: FeatureStagingModel}`` of a feature model or of a length-gated one's
    members (``members``: the roles to adapt, default all)."""
    from hypnoscope.models.feature_classifiers import FeatureStagingModel
    from hypnoscope.models.length_gate import LengthGatedModel

    if isinstance(model, FeatureStagingModel):
        found = {"model": model}
    elif isinstance(model, LengthGatedModel):
        found = {"night": model.night, "short": model.short}
    else:
        raise ValueError(f"model {getattr(model, 'name', model)!r} "
                         f"({type(model).__name__}) is not a feature model: 'boost' and "
                         "'refit' adapt LightGBM feature models (e.g. the shipped default); "
                         "use method 'recalibrate' for any other model")
    if members is not None:
        unknown = sorted(set(members) - set(found))
        if unknown:
            raise ValueError(f"unknown member(s) {unknown} of model "
                             f"{getattr(model, 'name', '?')!r}; it has {sorted(found)}")
        found = {k: v for k, v in found.items() if k in members}
    for role, m in found.items():
        if m.algorithm != "lightgbm":
            raise ValueError(f"member {role!r} is a {m.algorithm!r} model; 'boost' needs "
                             "LightGBM (use 'refit' or 'recalibrate')")
    return found


def member_training_matrix(member, nights) -> tuple[np.ndarray, np.ndarray]:
    """The scored epochs of ``nights`` as a fitted feature model sees them in training:
    its crops (a stretches-only member trains on stretches), its temporal context, its
    training population's shrinkage; ``(X, y)``."""
    X, y, _ = member.training_matrix(member.training_nights(list(nights), augment=False))
    return X, y


def _boost_member(member, nights, opts: dict[str, Any], seed: int, n_jobs: int) -> None:
    """Continue boosting ``member``'s LightGBM estimator on ``nights`` (in place)."""
    import lightgbm as lgb

    from hypnoscope.models.storage import PortableLightGBM
    from hypnoscope.utils.runtime import progress

    est = member.estimator_
    model_str = getattr(est, "model_str", None) or est.booster_.model_to_string()
    classes = np.asarray(est.classes_, dtype=int)
    X, y = member_training_matrix(member, nights)
    index = {int(c): i for i, c in enumerate(classes)}
    keep = np.isin(y, classes)
    X, y = X[keep], np.array([index[int(v)] for v in y[keep]], dtype=int)
    if len(y) == 0:
        raise ValueError("the adaptation nights hold no scored epoch of a stage the model "
                         f"knows ({list(classes)})")
    cw = member.class_weight_ or {}
    w = np.array([cw.get(int(classes[i]), 1.0) for i in y])
    params = {"objective": "multiclass", "num_class": len(classes), "verbose": -1,
              "learning_rate": float(opts["learning_rate"]),
              "num_leaves": int(opts["num_leaves"]),
              "min_data_in_leaf": int(opts["min_data_in_leaf"]),
              "feature_fraction": float(opts["feature_fraction"]),
              "lambda_l2": float(opts["lambda_l2"]), "max_bin": 63,
              "seed": int(seed), "num_threads": int(n_jobs)}
    rounds = int(opts["rounds"])
    with progress(total=rounds, desc=f"boosting on {len(y)} lab epochs", unit="round") as bar:
        booster = lgb.train(params, lgb.Dataset(X, y, weight=w), num_boost_round=rounds,
                            init_model=lgb.Booster(model_str=model_str),
                            callbacks=[lambda env: bar.update(1)])
    member.estimator_ = PortableLightGBM(booster.model_to_string(), classes)


def _refit_member(member, base_nights, nights, weight: int) -> Any:
    """A copy of ``member`` fitted on ``base_nights`` plus ``weight`` copies of ``nights``."""
    fresh = copy.deepcopy(member)
    fresh.estimator_ = None
    lab = [dataclasses.replace(n, night_id=f"{n.night_id}~lab{i}")
           for i in range(int(weight)) for n in nights]
    fresh.fit(list(base_nights) + lab)
    from hypnoscope.models.storage import make_portable

    return make_portable(fresh)


# ------------------------------------------------------------------ recalibration
def _calibrated(p: np.ndarray, log_bias: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities ``p`` recalibrated: ``softmax(log p / T + bias)``."""
    z = np.log(np.clip(p, 1e-12, None)) / temperature + log_bias[None, :]
    z -= z.max(axis=1, keepdims=True)
    q = np.exp(z)
    return q / q.sum(axis=1, keepdims=True)


def fit_recalibration(proba: np.ndarray, y: np.ndarray, l2: float = 1000.0,
                      ) -> tuple[np.ndarray, float]:
    """Per-stage log-probability bias and temperature that minimise the mean negative
    log-likelihood of the labels ``y`` under ``softmax(log proba / T + bias)``, plus
    ``l2 / n`` times the squared bias and log-temperature (so a few epochs move them
    little)."""
    from scipy.optimize import minimize

    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y, dtype=int)
    keep = y >= 0
    logp, y = np.log(np.clip(proba[keep], 1e-12, None)), y[keep]
    n, k = logp.shape
    if n == 0:
        raise ValueError("recalibration needs scored epochs; the adaptation nights have none")
    onehot = np.eye(k)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, log_t = theta[:k], theta[k]
        t = np.exp(log_t)
        z = logp / t + b
        z = z - z.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        nll = -np.mean(np.sum(onehot * np.log(np.clip(q, 1e-300, None)), axis=1))
        g_z = (q - onehot) / n
        grad_b = g_z.sum(axis=0) + 2 * l2 / n * b
        grad_t = float(np.sum(g_z * (-logp / t))) + 2 * l2 / n * log_t
        return nll + l2 / n * (b @ b + log_t**2), np.r_[grad_b, grad_t]

    res = minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B")
    b = res.x[:k] - res.x[:k].mean()
    return b, float(np.exp(res.x[k]))


# ------------------------------------------------------------------ adapting
def resolve_method_options(method: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """:data:`METHOD_DEFAULTS` of ``method`` updated by ``options`` (unknown names raise)."""
    if method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; expected one of {METHODS}")
    opts = dict(METHOD_DEFAULTS[method])
    unknown = sorted(set(options or {}) - set(opts))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} of method {method!r}; it takes "
                         f"{sorted(opts)}")
    opts.update(options or {})
    return opts


def check_adaptation_nights(model, nights) -> list:
    """The nights as a list, checked: at least one, each with scored epochs, all of the
    input the model was trained on."""
    from hypnoscope.datasets import check_training_input

    nights = list(nights)
    if not nights:
        raise ValueError("adaptation needs at least one reviewed night; none was given")
    empty = [str(n.night_id) for n in nights if not (np.asarray(n.y) >= 0).any()]
    if empty:
        raise ValueError(f"night(s) {', '.join(empty)} have no scored epoch; a reviewed "
                         "night needs its stages")
    check_training_input(nights, (getattr(model, "metadata", {}) or {}).get("training_data"))
    return nights


def adapt_model(model, nights, method: str = DEFAULT_METHOD, *, base_name: str = "model",
                base_nights=None, options: dict[str, Any] | None = None,
                members: list[str] | None = None, seed: int = 0, n_jobs: int = 1,
                name: str = "adapted") -> AdaptedModel:
    """Adapt a fitted staging ``model`` to a lab's scored ``nights``.

    Parameters
    ----------
    model : StagingModel
        The fitted base model (not changed).
    nights : list of Night
        The lab's nights with their reviewed stages (of the model's input kind).
    method : {"boost", "refit", "recalibrate"}
        See the module docstring.
    base_name : str
        Name of the base model, recorded (e.g. ``"default"``).
    base_nights : list of Night, optional
        The base model's training nights (``"refit"`` only, where they are required).
    options : dict, optional
        Method options (:data:`METHOD_DEFAULTS`).
    members : list of str, optional
        ``"boost"``/``"refit"`` of a length-gated model: the members to adapt
        (``"night"``, ``"short"``; default both).
    seed, n_jobs : int
        LightGBM's seed and threads (``"boost"``).
    name : str
        Name of the adapted model.

    Returns
    -------
    AdaptedModel
    """
    opts = resolve_method_options(method, options)
    nights = check_adaptation_nights(model, nights)
    record = adaptation_record(nights, base_name, method, opts, members)
    if method == "recalibrate":
        proba = np.vstack([model.predict_proba(n) for n in nights])
        bias, temp = fit_recalibration(proba, np.concatenate([n.y for n in nights]),
                                       float(opts["l2"]))
        record["fitted"] = {"log_bias": bias.round(6).tolist(), "temperature": round(temp, 6)}
        return AdaptedModel(model, record, log_bias=bias, temperature=temp, name=name)
    if method == "refit" and not base_nights:
        raise ValueError("method 'refit' fits the model again on its training nights plus "
                         "the lab's: give the training nights (base_nights; on the command "
                         "line --base-features DIR)")
    adapted = copy.deepcopy(model)
    found = _feature_members(adapted, members)
    record["members"] = sorted(found)
    for role, member in found.items():
        if method == "boost":
            _boost_member(member, nights, opts, seed, n_jobs)
        else:
            refit = _refit_member(member, base_nights, nights, int(opts["weight"]))
            if role == "model":
                adapted = refit
            else:
                setattr(adapted, role, refit)
    return AdaptedModel(adapted, record, name=name)


def adapted_card(base_card: dict[str, Any], model: AdaptedModel, name: str) -> dict[str, Any]:
    """The model card of an adapted model: what staging reads of the base's card (input,
    channels, options, output, limits) plus the adaptation; the base's measured accuracy
    is left out (it was measured before the adaptation)."""
    keep = ("trained_on", "architecture", "options", "smoothing", "input",
            "channels_expected", "output", "limits", "training_data")
    ad = model.adaptation
    card = {"name": name,
            "summary": (f"{ad['base_model']} adapted by {ad['method']!r} to "
                        f"{len(ad['night_ids'])} reviewed night(s) of "
                        f"{len(ad['subjects'])} subject(s) ({ad['n_scored_epochs']} scored "
                        "epochs); not evaluated on them"),
            **{k: base_card[k] for k in keep if k in base_card},
            "base_model": ad["base_model"], "adaptation": ad}
    card["input"] = base_card.get("input")
    return card


# ------------------------------------------------------------------ reading reviewed nights
def reviewed_scoring(psg: str | os.PathLike) -> Path | None:
    """The reviewed scoring of a recording: ``STEM.reviewed.tsv`` beside it or in its
    review folder (``STEM_review/``, where ``hypnoscope review`` writes it), else the one
    ``STEM*.reviewed.tsv`` beside it (several raise ``ValueError`` naming them); None if
    none."""
    from hypnoscope.io.recordings import recording_stem, review_dir

    psg = Path(psg)
    stem = recording_stem(psg)
    for exact in (psg.parent / f"{stem}{REVIEWED_SUFFIX}",
                  review_dir(psg) / f"{stem}{REVIEWED_SUFFIX}"):
        if exact.is_file():
            return exact
    found = sorted(psg.parent.glob(f"{glob.escape(stem)}*{REVIEWED_SUFFIX}"))
    if len(found) > 1:
        raise ValueError(f"{psg}: several reviewed scorings match: "
                         f"{[f.name for f in found]}; keep one")
    return found[0] if found else None


def _recording_night(psg: Path, scoring: Path, model, kind: str):
    """One recording with its scoring as a night of the model's input ``kind``
    (``"features"``: the shipped models' band powers, as the real band-power set;
    ``"signals"``: :func:`hypnoscope.signal.nights.load_recording` with the model's
    training preprocessing)."""
    from hypnoscope.datasets import Night
    from hypnoscope.io.recordings import sleepedf_ids

    subject, night_id = sleepedf_ids(psg.name)
    if kind == "signals":
        from hypnoscope.signal.nights import load_recording

        trained = (getattr(model, "metadata", {}) or {}).get("training_data") or {}
        night = load_recording(psg, scoring, preprocessing=trained.get("preprocessing")
                               or "default")
        night.meta["scoring"] = str(scoring)
        return night
    from hypnoscope.signal.bandpower import FEATURE_NAMES, recording_features

    rec = recording_features(psg, scoring)
    return Night(X=rec["features"], y=rec["labels"], subject_id=subject, night_id=night_id,
                 kind="features", channels=list(rec["meta"]["channel_names"]),
                 onsets_sec=rec["onsets_sec"],
                 meta={"source": str(psg), "scoring": str(scoring),
                       "feature_names": list(FEATURE_NAMES),
                       "channel_names": list(rec["meta"]["channel_names"])})


def reviewed_pairs(directory: str | os.PathLike) -> tuple[list[tuple[Path, Path]], list[str]]:
    """``(recording, scoring)`` pairs of a folder and the recordings left out (with why).

    Each recording (:func:`hypnoscope.io.recordings.list_recordings`, the scorings the
    review writes not counted) is paired with its reviewed scoring
    (:func:`reviewed_scoring`), else with its hypnogram as ``hypnoscope train --data``
    pairs them (:func:`hypnoscope.io.recordings.find_hypnogram`)."""
    from hypnoscope.io.recordings import find_hypnogram, list_recordings

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"reviewed-nights folder not found: {directory}")
    recs = [p for p in list_recordings(directory) if ".reviewed" not in p.name.lower()]
    pairs, skipped = [], []
    for psg in recs:
        scoring = reviewed_scoring(psg) or find_hypnogram(psg)
        if scoring is None:
            skipped.append(f"{psg.name}: no reviewed scoring ({REVIEWED_SUFFIX}) or hypnogram")
        else:
            pairs.append((psg, scoring))
    if not pairs:
        raise ValueError(
            f"{directory}: no recording with a reviewed scoring (RECORDING{REVIEWED_SUFFIX}, "
            "written by 'hypnoscope review') or a hypnogram (as 'hypnoscope train --data' "
            f"pairs them) was found; {len(recs)} recording(s) in the folder"
            + (": " + "; ".join(skipped[:5]) if skipped else ""))
    return pairs, skipped


def keep_reviewed_epochs(night, scoring: str | os.PathLike):
    """``night`` with only the epochs a person scored in ``scoring`` labelled: a reviewed
    scoring's epochs left automatic (:func:`hypnoscope.io.hypnograms.reviewed_epochs`)
    become unscored, so that a model is not adapted on its own predictions. A scoring
    without a ``scorer`` column (a hypnogram) is every epoch scored: ``night`` as it is.
    ``meta["reviewed_epochs"]`` counts the labelled epochs kept."""
    from hypnoscope.io.hypnograms import reviewed_epochs

    if not str(scoring).lower().endswith(REVIEWED_SUFFIX):
        return night
    mask = reviewed_epochs(scoring)
    if mask is None:
        return night
    y = np.asarray(night.y).copy()
    keep = np.zeros(len(y), dtype=bool)
    n = min(len(y), len(mask))
    keep[:n] = mask[:n]
    y[~keep] = UNSCORED
    night.y = y
    night.meta["reviewed_epochs"] = int((y != UNSCORED).sum())
    return night


def load_reviewed_nights(directory: str | os.PathLike, model,
                         all_epochs: bool = False) -> list:
    """The nights of a folder of recordings and their reviewed scorings
    (:func:`reviewed_pairs`), as nights of the input ``model`` reads; a recording that
    cannot be read raises ``ValueError`` naming it and why. Recordings without any
    scoring are left out (an info notice names them). Of a reviewed scoring only the
    epochs a person scored are labelled (:func:`keep_reviewed_epochs`; an info notice
    gives the counts), unless ``all_epochs``: then the epochs the review left automatic
    count as accepted."""
    from hypnoscope.notices import Notices
    from hypnoscope.utils.runtime import progress

    pairs, skipped = reviewed_pairs(directory)
    if skipped:
        Notices().add("unscored-recordings", f"{len(skipped)} recording(s) of {directory} "
                      "have no scoring and are not adapted on: " + "; ".join(skipped),
                      severity="info")
    kind = "signals" if getattr(model, "input_kind_", "features") == "signals" else "features"
    nights, failed = [], []
    for psg, scoring in progress(pairs, desc="reading reviewed nights", unit="night"):
        try:
            nights.append(_recording_night(psg, scoring, model, kind))
        except (ValueError, OSError) as exc:
            failed.append(f"{psg.name} with {scoring.name}: {exc}")
    if failed:
        raise ValueError(f"{len(failed)} of {len(pairs)} reviewed recording(s) of "
                         f"{directory} could not be read:\n  " + "\n  ".join(failed))
    if not all_epochs:
        scored = sum(int((np.asarray(n.y) != UNSCORED).sum()) for n in nights)
        nights = [keep_reviewed_epochs(n, n.meta.get("scoring", "")) for n in nights]
        partial = [n for n in nights if "reviewed_epochs" in n.meta]
        if partial:
            kept = sum(int((np.asarray(n.y) != UNSCORED).sum()) for n in nights)
            Notices().add("reviewed-epochs-only", f"{directory}: adapting on the {kept} of "
                          f"{scored} scored epochs a person scored ({len(partial)} reviewed "
                          "scoring(s) leave the rest automatic; --all-epochs counts those as "
                          "accepted)", severity="info")
    for n in nights:
        if not (n.y != UNSCORED).any():
            why = ("nobody reviewed an epoch of it (every row's scorer is "
                   "'automatic'); review some, or pass --all-epochs to accept the automatic "
                   "stages" if "reviewed_epochs" in n.meta else "no scored epoch in this "
                   "scoring")
            raise ValueError(f"{n.meta.get('scoring')}: {why}")
    return nights


__all__ = ["DEFAULT_METHOD", "METHODS", "METHOD_DEFAULTS", "REVIEWED_SUFFIX", "AdaptedModel",
           "adapt_model", "adapted_card", "evaluate_adapted", "fit_recalibration",
           "keep_reviewed_epochs", "load_reviewed_nights", "member_training_matrix", "night_digest",
           "refuse_adaptation_nights", "reviewed_pairs", "reviewed_scoring"]
