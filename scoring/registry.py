"""A versioned model directory with champion/challenger promotion and rollback.

Layout (``root`` is ``<state_dir>/models`` by default)::

    root/registry.json          {"champion": "v0002", "history": ["v0001", "v0002"]}
    root/v0002/model.joblib     the LeadScorer (without its text encoder)
    root/v0002/meta.json        version, created_at, trained-on window, features, metrics,
                                 model choices, thresholds, encoder id, library versions
    root/v0002/validation.joblib the held-out validation rows, labels and probabilities

``challenge(scorer, report)`` registers a new version and promotes it only if it is not worse
than the champion **on the same validation data** — the new model's held-out rows, scored now
by the champion: ``roc_auc(challenger) >= roc_auc(champion) - tolerance``. ``history`` is the
promotion stack: ``rollback()`` pops the champion and restores the one before it;
``promote(version)`` makes any registered version the champion (an operator's override).

Loading a model made with other library versions (scikit-learn, numpy, pandas, Python)
warns with :class:`ModelVersionWarning`, naming both versions; if it cannot be unpickled at all,
:class:`ModelLoadError` says which versions made it and to retrain.
"""

from __future__ import annotations

import builtins
import json
import os
import platform
import tempfile
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from scoring import metrics as M
from scoring.model import LeadScorer

_LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib", "leadpilot")


class ModelVersionWarning(UserWarning):
    """A registered model was made with other library versions than the running ones."""


class ModelLoadError(RuntimeError):
    """A registered model cannot be loaded (missing, corrupt, or made by incompatible libraries)."""


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a pickled model depends on."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _mismatch(made: dict[str, str], now: dict[str, str]) -> list[str]:
    def key(lib: str, v: str) -> str:  # Python: major.minor decides pickle compatibility
        return ".".join(v.split(".")[:2]) if lib == "python" else v

    return [f"{lib} {made[lib]} (running {now.get(lib)})" for lib in made
            if lib in now and lib != "leadpilot" and key(lib, made[lib]) != key(lib, now[lib])]


@dataclass(frozen=True)
class Promotion:
    """What ``challenge`` decided."""

    version: str
    promoted: bool
    reason: str
    challenger: dict[str, float]
    champion: dict[str, float] | None = None


class ModelRegistry:
    """Versioned models on disk; see the module docstring."""

    def __init__(self, root: str | Path, *, tolerance: float = 0.0) -> None:
        self.root = Path(root)
        self.tolerance = tolerance

    # ------------------------------------------------------------ state
    def _state(self) -> dict[str, Any]:
        file = self.root / "registry.json"
        if not file.exists():
            return {"champion": None, "history": []}
        return dict(json.loads(file.read_text(encoding="utf-8")))

    def _write_json(self, file: Path, data: dict[str, Any]) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
        os.replace(tmp, file)  # atomic: a reader never sees half a file

    def path(self, version: str) -> Path:
        """The directory of ``version``."""
        return self.root / version

    def versions(self) -> list[str]:
        """Registered versions, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / "meta.json").exists())

    def champion_version(self) -> str | None:
        """The version the daemon scores with, or None before the first promotion."""
        champ = self._state().get("champion")
        return str(champ) if champ else None

    def metadata(self, version: str) -> dict[str, Any]:
        """The ``meta.json`` of ``version``."""
        self._check(version)
        return dict(json.loads((self.path(version) / "meta.json").read_text(encoding="utf-8")))

    def _check(self, version: str) -> None:
        if version not in self.versions():
            known = ", ".join(self.versions()) or "none yet"
            raise KeyError(f"no model version {version!r} in {self.root} (registered: {known})")

    # ------------------------------------------------------------ writing
    def register(self, scorer: LeadScorer, report: Any, *, now: datetime | None = None) -> str:
        """Store a new version (not promoted); returns its name."""
        import joblib

        self.root.mkdir(parents=True, exist_ok=True)
        n = len(self.versions()) + 1
        while True:  # mkdir is atomic: two trainers never get the same version
            version = f"v{n:04d}"
            try:
                self.path(version).mkdir()
                break
            except FileExistsError:
                n += 1
        scorer.version = version
        folder = self.path(version)
        joblib.dump(scorer, folder / "model.joblib")
        joblib.dump({"rows": report.validation_rows, "labels": np.asarray(report.validation_labels)},
                    folder / "validation.joblib")
        spec = scorer.spec
        meta = {"version": version, "created_at": (now or datetime.now(UTC)).isoformat(),
                "trained_on": {"from": report.window[0], "to": report.window[1], "n_train": report.n_train,
                               "n_validation": report.n_validation, "split": report.split},
                "features": {"numeric": list(spec.numeric), "categorical": list(spec.categorical),
                             "text": list(spec.text)},
                "encoder": scorer.featurizer.encoder_id, "metrics": report.metrics, "model": report.model,
                "opportunity_threshold": report.opportunity_threshold, "opportunity_note": report.opportunity_note,
                "grade_thresholds": list(report.grade_thresholds), "libraries": library_versions()}
        self._write_json(folder / "meta.json", meta)
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` the champion (pushed on the history stack)."""
        self._check(version)
        state = self._state()
        if state.get("champion") == version:
            return
        state["history"] = [*state.get("history", []), version]
        state["champion"] = version
        self._write_json(self.root / "registry.json", state)

    def rollback(self) -> str:
        """Restore the previous champion; returns it. Refused when there is none."""
        state = self._state()
        history = list(state.get("history", []))
        if len(history) < 2:
            raise ValueError("nothing to roll back to: fewer than two models were ever promoted")
        current = history.pop()
        while history and history[-1] == current:
            history.pop()
        if not history:
            raise ValueError("nothing to roll back to: no earlier champion")
        state.update(history=history, champion=history[-1])
        self._write_json(self.root / "registry.json", state)
        return str(history[-1])

    def challenge(self, scorer: LeadScorer, report: Any, *, now: datetime | None = None,
                  encoder: Any = None) -> Promotion:
        """Register ``scorer`` and promote it if not worse than the champion on its validation data."""
        version = self.register(scorer, report, now=now)
        mine = {k: float(report.metrics[k]) for k in ("roc_auc", "brier", "ece")}
        champ = self.champion_version()
        if champ is None:
            self.promote(version)
            return Promotion(version, True, "first model: promoted", mine)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ModelVersionWarning)
                # the deployment's encoder: the challenger's own unless told otherwise
                old = self.load(champ, encoder=encoder if encoder is not None else scorer.encoder)
            p_old = old.predict_proba(report.validation_rows)
        except (ModelLoadError, ValueError) as exc:
            self.promote(version)
            return Promotion(version, True, f"champion {champ} cannot score ({exc}); promoted {version}", mine)
        y = np.asarray(report.validation_labels)
        theirs = {"roc_auc": M.roc_auc(y, p_old), "brier": M.brier(y, p_old), "ece": M.ece(y, p_old)}
        if mine["roc_auc"] >= theirs["roc_auc"] - self.tolerance:
            self.promote(version)
            why = (f"{version} ROC-AUC {mine['roc_auc']:.4f} >= champion {champ} {theirs['roc_auc']:.4f} "
                   f"on the same {len(y)} validation leads: promoted")
            return Promotion(version, True, why, mine, theirs)
        why = (f"{version} ROC-AUC {mine['roc_auc']:.4f} < champion {champ} {theirs['roc_auc']:.4f} "
               f"on the same {len(y)} validation leads: kept {champ}")
        return Promotion(version, False, why, mine, theirs)

    # ------------------------------------------------------------ reading
    def load(self, version: str | None = None, *, encoder: Any = None) -> LeadScorer:
        """Load ``version`` (default: the champion), attaching ``encoder`` for text models."""
        import joblib

        version = version or self.champion_version()
        if version is None:
            raise ModelLoadError(f"no champion model in {self.root}; train one with `leadpilot train`")
        meta = self.metadata(version)
        made = dict(meta.get("libraries", {}))
        diff = _mismatch(made, library_versions())
        if diff:
            warnings.warn(ModelVersionWarning(
                f"model {version} was made with {', '.join(diff)}; its scores may differ. "
                "Retrain with `leadpilot train` to rebuild it with the running versions"), stacklevel=2)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
                scorer = joblib.load(self.path(version) / "model.joblib")
        except Exception as exc:  # noqa: BLE001 - any unpickling failure gets the same clear message
            made_by = ", ".join(f"{k} {v}" for k, v in made.items()) or "unknown versions"
            raise ModelLoadError(f"model {version} cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}); "
                                 f"it was made with {made_by}. Retrain with `leadpilot train`") from exc
        if not isinstance(scorer, LeadScorer):
            raise ModelLoadError(f"{self.path(version) / 'model.joblib'} does not hold a LeadScorer")
        scorer.version = version
        if encoder is not None:
            scorer.attach_encoder(encoder)
        return scorer

    def validation(self, version: str) -> dict[str, Any]:
        """The stored validation rows and labels of ``version``."""
        import joblib

        self._check(version)
        return dict(joblib.load(self.path(version) / "validation.joblib"))


    def list(self) -> builtins.list[dict[str, Any]]:
        """Every version's metadata plus ``champion: bool``, oldest first."""
        champ = self.champion_version()
        return [{**self.metadata(v), "champion": v == champ} for v in self.versions()]


def decision_dict(decision: Promotion) -> dict[str, Any]:
    """A ``Promotion`` as a plain dict (for JSON logs)."""
    return asdict(decision)
