"""``gesture tune``: search model rate, window, channels, architecture and augmentation under
the board's budget, scored by person-wise cross-validation on the training people only.

Why this shape:

* **Scores never see the test people.** The dataset's test people (dataset.json
  ``test_subjects``, else the same seed-drawn person split ``gesture train`` uses) are set aside
  first; candidates are scored by group K-fold over the remaining *people* (a person's takes are
  all in one fold), because errors on real data are whole people, not single takes.
* **Scores are what the board does.** Each fold's model is converted to full int8 and its
  accuracy is the TFLM interpreter's on the board's integer preprocessing
  (``train.fit_and_evaluate``); model bytes and arena are measured on that int8 model.
* **The budget is checked before any fitting.** An untrained candidate converts in about a second:
  its bytes, arena and MACs are exact before training, so over-budget candidates are pruned
  without spending the cross-validation.
* **Instructions per inference are measured on the Cortex-M4.** With the ARM toolchain, QEMU and
  a TFLM tree, ``gesture tune`` passes a probe (``training.verify.measure_cost``): the untrained
  candidate is exported and run under QEMU, a few seconds each once the runtime objects are
  cached, since the count depends on the layers, not the weights. Counts are remembered by
  model sha256 (training.m4_cost); without the tools they are estimated from the layers
  (``training.m4_cost.estimate_instructions``, within ~6 % of 21 measured models).
* **Optuna owns the search** (TPE, multi-objective: accuracy up, instructions down) and its
  storage: an SQLite file under DIR by default, so Ctrl-C and re-running resumes; several
  processes or machines join one study through an Optuna storage URL (RDB such as
  ``postgresql://…``/``sqlite:///…`` or ``journal:PATH`` for a JournalStorage file).
  PostgreSQL needs the psycopg 3 driver (the ``postgres`` extra), named when missing.
* **``--trials`` is exact, however many processes.** A trial holds its place from the moment it
  is created (see ``claim`` in :func:`tune`), so workers never overshoot the count.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from capture.errors import GestureError
from capture.fileio import atomic_write_bytes, atomic_write_text
from capture.takes import ACCEL_CHANNELS, GYRO_CHANNELS, Take
from training.dataset import Dataset, load_dataset, validate
from training.model import DEFAULT_HEAD, FAMILIES, HEADS
from training.preprocess import PreprocessConfig
from training.plan import MAX_WINDOW, MIN_WINDOW, make_plan, source_rate
from training.train import quiet_tensorflow_logs
from training.train import DEFAULTS, coverage_warning, default_split, prepare_takes, split_takes
from training.splits import cv_folds

STUDY_NAME = "gesture-tune"
DEFAULT_TRIALS = 20
DEFAULT_TIMEOUT_S = 480.0  # no new trial after 8 min: search + final training within ~10 min on 2 cores
DEFAULT_FOLDS = 3
TRIAL_EPOCHS = 8  # per fold; the chosen model is then trained with gesture train's epochs
BUDGET = {"flash": 64 * 1024, "arena": 8 * 1024, "instructions": 600_000}  # ~9 ms at 64 MHz (issue 20)
SELECT_TOLERANCE = 0.01  # pick the cheapest candidate within this of the best CV accuracy (1 percentage point)
CANDIDATE_RATES = (10, 12, 16, 20, 25, 32, 40, 50, 64, 80, 100, 119)


# ----------------------------------------------------------------------------- storage

HEARTBEAT_S = 60  # RDB studies: a trial whose process died (SIGKILL, power) is failed after 2 beats, freeing its place

# what a storage URL's scheme needs installed: (module, what to tell the user)
DRIVERS = {
    "postgresql": ("psycopg", "the PostgreSQL driver psycopg 3: pip install 'gesture-kit[postgres]' (or 'psycopg[binary]')"),
    "postgresql+psycopg": ("psycopg", "the PostgreSQL driver psycopg 3: pip install 'gesture-kit[postgres]' (or 'psycopg[binary]')"),
    "postgresql+psycopg2": ("psycopg2", "psycopg2: pip install psycopg2-binary (or use postgresql:// with "
                                        "pip install 'gesture-kit[postgres]')"),
    "mysql": ("MySQLdb", "a MySQL driver: pip install mysqlclient (or use mysql+pymysql:// with pip install pymysql)"),
    "mysql+pymysql": ("pymysql", "PyMySQL: pip install pymysql"),
}


def _missing_driver(storage: str) -> str | None:
    """What to install for this URL's database driver, when it is not importable (else None)."""
    import importlib.util

    scheme = storage.split("://", 1)[0].lower()
    module, what = DRIVERS.get(scheme, (None, ""))
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return what


def _shown_url(storage: str) -> str:
    """The URL with its password hidden (it goes into error messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can parse: nothing to hide
        return storage


def _rdb_storage(storage: str, attempts: int = 5):
    """An RDBStorage; the first processes on an empty database race to create Optuna's tables
    (two workers started together: one CREATE TYPE fails as a duplicate), so a creation that
    collides with another's is tried again and then finds the tables there."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeat_interval is marked experimental: not the user's concern
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S)
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def open_storage(storage: str | None, out: Path):
    """The Optuna storage: ``journal:PATH`` -> JournalStorage file, any other URL -> RDB,
    None -> SQLite file DIR/study.db (resumable). RDB storages beat a heartbeat, so the place of
    a trial whose process died is given back (see :func:`tune`'s trial count)."""
    import optuna

    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
        return _rdb_storage(f"sqlite:///{(out / 'study.db').resolve()}")
    if storage.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        name = storage[len("journal:"):]
        if not name:
            raise GestureError("--storage journal: needs a file, e.g. journal:DIR/study.log")
        path = Path(name)
        if path.is_dir():
            raise GestureError(f"--storage {storage}: {path} is a folder; expected a journal file, e.g. {path}/study.log")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise GestureError(f"--storage {storage}: cannot create the journal file "
                               f"({e.strerror or e}: {e.filename or path})") from None
    missing = _missing_driver(storage)
    if missing:
        raise GestureError(f"--storage {storage.split('://', 1)[0]}://…: the database driver is not installed; "
                           f"it needs {missing}")
    try:
        return _rdb_storage(storage)
    except ImportError as e:  # a driver we do not list: name the module SQLAlchemy could not import
        cause = e.__cause__ or e.__context__
        raise GestureError(f"--storage {storage.split('://', 1)[0]}://…: the database driver is not installed "
                           f"({cause or e}); install the module it names") from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy/driver errors: tell the user which URL
        raise GestureError(f"--storage {_shown_url(storage)!r}: {e.__class__.__name__}: {e}; expected an Optuna RDB URL "
                           "(sqlite:///PATH, postgresql://…, mysql://…) or journal:PATH") from None


class SurplusTrial(Exception):
    """A trial started when the study already had its ``--trials`` places claimed (see tune's claim)."""


WAIT_S = 2.0  # a final run waiting for other processes' last trials polls the storage this often


class _SurplusFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SurplusTrial" not in record.getMessage()


@contextlib.contextmanager
def _quiet_surplus():
    """Optuna logs every failed trial as a warning; a surplus trial is not a failure to report."""
    log = logging.getLogger("optuna")
    f = _SurplusFilter()
    log.addFilter(f)
    for h in log.handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)
        for h in log.handlers:
            h.removeFilter(f)


# ----------------------------------------------------------------------------- instructions

# Measures the Cortex-M4 instructions per inference of int8 model bytes (the PreprocessConfig
# says window, channels and labels for the export); `gesture tune` passes
# training.verify.measure_cost when the ARM toolchain, QEMU and a TFLM tree are there.
CostProbe = Callable[[bytes, PreprocessConfig], int]


def instructions(model_bytes: bytes, features: dict[str, int], cfg: PreprocessConfig | None = None,
                 probe: CostProbe | None = None) -> tuple[int, str]:
    """Instructions per inference on the M4: what was measured for these bytes before (``gesture
    verify`` or the probe), else measured now by ``probe`` (QEMU, seconds per candidate), else
    estimated from the model's cost features (training.m4_cost). Returns (count, how)."""
    from training.m4_cost import estimate_instructions, m4_instructions

    n = m4_instructions(model_bytes)
    if n:
        return int(n), "measured"
    if probe is not None and cfg is not None:
        try:
            return int(probe(model_bytes, cfg)), "measured"
        except GestureError as e:
            print(f"warning: could not measure the candidate on the M4 ({e}); using the estimate",
                  file=sys.stderr, flush=True)
    return estimate_instructions(features), "estimated"


# ----------------------------------------------------------------------------- folds

def person_folds(takes: list[Take], k: int, seed: int) -> list[tuple[list[Take], list[Take]]]:
    """Group K-fold by subject, every fold's people covering every label; stratified K-fold over
    takes when the data records no people (training.splits.cv_folds)."""
    return cv_folds(takes, sorted({t.label for t in takes}), k, seed)[0]


# ----------------------------------------------------------------------------- search space

@dataclass
class Candidate:
    rate_hz: int
    window: int
    channels: str
    family: str
    depth: int
    width: int
    kernel: int
    augment: int
    augment_strength: float
    head: str = DEFAULT_HEAD

    @property
    def architecture(self) -> dict[str, Any]:
        filters = tuple(int(round(self.width * m)) for m in (1.0, 1.5, 2.0, 2.0)[:self.depth])
        return {"family": self.family, "filters": list(filters), "kernels": [self.kernel] * self.depth,
                "head": self.head}


def search_space(takes: list[Take]) -> dict[str, Any]:
    """The choices, fixed per dataset (Optuna needs the same categorical choices every trial)."""
    src = source_rate(takes)
    rates = sorted({r for r in CANDIDATE_RATES if r <= src + 0.5} | {make_plan(takes, []).rate_hz})
    has_gyro = all(set(GYRO_CHANNELS) <= set(t.channels) for t in takes)
    return {"rates": rates, "channels": ["accel", "imu"] if has_gyro else ["accel"]}


def suggest(trial, space: dict[str, Any], takes: list[Take]) -> Candidate:
    rate = trial.suggest_categorical("rate_hz", space["rates"])
    # never shorter than the plan's window (90th percentile take): a window that sees half a gesture
    # lost 8 points on unseen people in punch_flex (docs/benchmarks.md, issue 20)
    factor = trial.suggest_float("window_factor", 1.0, 1.5)
    base = make_plan(takes, [], rate_hz=rate).window
    window = int(min(max(int(round(base * factor / 8.0)) * 8, MIN_WINDOW), MAX_WINDOW))
    trial.set_user_attr("window", window)
    return Candidate(
        rate_hz=int(rate), window=window,
        channels=trial.suggest_categorical("channels", space["channels"]),
        family=trial.suggest_categorical("family", list(FAMILIES)),
        head=trial.suggest_categorical("head", list(HEADS)),
        depth=trial.suggest_int("depth", 2, 4),
        width=trial.suggest_int("width", 4, 24, step=4),
        kernel=trial.suggest_categorical("kernel", [3, 5, 7]),
        augment=trial.suggest_int("augment", 0, 8, step=2),
        augment_strength=trial.suggest_float("augment_strength", 0.25, 2.0),
    )


# ----------------------------------------------------------------------------- one candidate

def measure_untrained(c: Candidate, n_channels: int, n_classes: int, seed: int,
                      probe: CostProbe | None = None) -> dict[str, Any]:
    """Bytes, arena, MACs and instructions of a candidate, exact before any training: the int8
    graph, its tensor sizes and its instruction count do not depend on the weights."""
    import keras

    from training.evaluate import smallest_arena
    from training.model import build_model, cost_features, count_macs
    from training.quantize import to_int8

    keras.utils.set_random_seed(seed)
    model = build_model(c.window, n_channels, n_classes, **c.architecture)
    rng = np.random.default_rng(seed)
    q = to_int8(model, rng.normal(size=(32, c.window, n_channels)).astype(np.float32), seed=seed)
    macs = count_macs(model)
    channels = list(ACCEL_CHANNELS) + (list(GYRO_CHANNELS) if n_channels == 6 else [])
    cfg = PreprocessConfig(labels=[f"c{i}" for i in range(n_classes)], channels=channels, model_rate_hz=c.rate_hz,
                           window=c.window, mean=[0] * n_channels, std=[1.0] * n_channels)
    n_instr, how = instructions(q.tflite, cost_features(model), cfg.with_input_quant(q.input_scale, q.input_zero_point),
                                probe)
    return {"model_bytes": len(q.tflite), "arena_bytes": int(smallest_arena(q.tflite)), "macs": macs,
            "instructions": n_instr, "instructions_source": how, "params": int(model.count_params())}


def over_budget(m: dict[str, Any], budget: dict[str, int]) -> list[str]:
    out = []
    for key, field in (("flash", "model_bytes"), ("arena", "arena_bytes"), ("instructions", "instructions")):
        if m[field] > budget[key]:
            out.append(f"{field} {m[field]:,} > {budget[key]:,}")
    return out


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the labels present of each label's recall. Plain accuracy rewards a model that
    calls everything the fold's commonest label (on punch_flex three different candidates all
    scored exactly the folds' punch shares, 58/74/92 %); this scores it 50 % on two labels."""
    labels = np.unique(y)
    return float(np.mean([(pred[y == k] == k).mean() for k in labels])) if len(labels) else 0.0


def cross_validate(ds: Dataset, folds, c: Candidate, *, epochs: int, seed: int,
                   limit_per_label: int | None) -> list[float]:
    """int8 (TFLM) balanced accuracy of the candidate on each fold's held-out people."""
    import keras

    from training.model import build_model
    from training.train import fit_and_evaluate

    accs = []
    for k, (fit, dev) in enumerate(folds):
        p = prepare_takes(ds, fit, dev, split_name=f"fold {k + 1}", seed=seed + k, rate_hz=c.rate_hz, window=c.window,
                          channels=c.channels, augment=c.augment, augment_strength=c.augment_strength,
                          limit_per_label=limit_per_label, quiet=True, plan_takes=fit, announce_skips=False)
        w = p.windows
        keras.utils.set_random_seed(seed + k)
        model = build_model(w.cfg.window, len(w.cfg.channels), len(w.cfg.labels), **c.architecture)
        e = fit_and_evaluate(model, w, epochs=epochs, seed=seed + k, quiet=True, measure_arena=False)
        accs.append(balanced_accuracy(w.y_test, e.scores_test.argmax(1)))
        keras.backend.clear_session()
    return accs


def estimate_trial_seconds(cv, n_classes: int, epochs: int, seed: int) -> float:
    """Seconds one trial takes, measured on this machine before the search: the default model
    fitted for two epochs on as many windows as the largest fold gives at the most augmentation
    searched (the second epoch timed, the first pays the tracing), converted to int8 once."""
    import keras

    from training.model import build_model
    from training.plan import make_plan
    from training.quantize import to_int8

    fit_n = max(len(fit) for fit, _ in cv)
    dev_n = max(len(dev) for _, dev in cv)
    window = make_plan(cv[0][0], []).window
    n = fit_n * (1 + 8)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, window, 3)).astype(np.float32)
    y = rng.integers(0, n_classes, n)
    model = build_model(window, 3, n_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    marks: list[float] = []
    cb = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: marks.append(time.monotonic()),
                                        on_epoch_end=lambda *_: marks.append(time.monotonic()))
    t0 = time.monotonic()
    model.fit(x, y, epochs=2, batch_size=DEFAULTS["batch"], verbose=0, callbacks=[cb])
    first = marks[1] - t0
    epoch = marks[3] - marks[2]
    t = time.monotonic()
    to_int8(model, x[:256], seed=seed)
    convert = time.monotonic() - t + dev_n * 0.002  # TFLM: about 2 ms per test window
    keras.backend.clear_session()
    return len(cv) * (first + (epochs - 1) * epoch + convert) + 3.0  # + the untrained candidate's cost


# ----------------------------------------------------------------------------- the study

@dataclass
class TuneResult:
    out: Path
    study_name: str
    chosen: dict[str, Any] | None
    rows: list[dict[str, Any]]
    model_report: dict[str, Any] | None


def _rows(study) -> list[dict[str, Any]]:
    import optuna

    pareto = {t.number for t in study.best_trials} if any(
        t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) else set()
    rows = []
    for t in study.trials:
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        a = t.user_attrs
        rows.append({"trial": t.number, "state": t.state.name.lower(), "pareto": t.number in pareto,
                     "cv_accuracy": a.get("cv_accuracy"), "fold_accuracy": a.get("fold_accuracy"),
                     "params": dict(t.params), "window": a.get("window"), "worker": a.get("worker"),
                     **{k: a.get(k) for k in ("model_bytes", "arena_bytes", "macs", "instructions",
                                              "instructions_source", "over_budget")}})
    return rows


def choose(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cheapest (fewest instructions) complete candidate within SELECT_TOLERANCE of the best
    cross-validated int8 accuracy."""
    done = [r for r in rows if r["state"] == "complete"]
    if not done:
        return None
    best = max(r["cv_accuracy"] for r in done)
    near = [r for r in done if r["cv_accuracy"] >= best - SELECT_TOLERANCE]
    return min(near, key=lambda r: (r["instructions"], -r["cv_accuracy"], r["trial"]))


def candidate_of(row: dict[str, Any]) -> Candidate:
    p = row["params"]
    return Candidate(rate_hz=int(p["rate_hz"]), window=int(row["window"]), channels=p["channels"], family=p["family"],
                     depth=int(p["depth"]), width=int(p["width"]), kernel=int(p["kernel"]), augment=int(p["augment"]),
                     augment_strength=float(p["augment_strength"]), head=str(p.get("head", DEFAULT_HEAD)))


def tune(data: str | Path, out: str | Path, *, budget_flash: int | None = None, budget_arena: int | None = None,
         budget_instructions: int | None = None, trials: int = DEFAULT_TRIALS, storage: str | None = None,
         folds: int = DEFAULT_FOLDS, epochs: int = TRIAL_EPOCHS, final_epochs: int = DEFAULTS["epochs"],
         seed: int = 0, worker: bool = False, limit_per_label: int | None = None,
         timeout: float | None = DEFAULT_TIMEOUT_S, quiet: bool = False,
         cost_probe: CostProbe | None = None, test: str | Path | None = None) -> TuneResult:
    """Run (or resume, or join) the study until it holds ``trials`` finished trials, then write
    DIR/tune.md, DIR/tune.json, DIR/pareto.png and train the chosen model into DIR/model
    (unless ``worker``: a helper process that only runs trials).

    ``test``: a separate test dataset (like ``gesture train --test``): every person of ``data``
    is then a training person for the cross-validation, and the final model is scored on it."""
    out = Path(out)
    budget = {"flash": budget_flash or BUDGET["flash"], "arena": budget_arena or BUDGET["arena"],
              "instructions": budget_instructions or BUDGET["instructions"]}
    ds = load_dataset(data)
    for w in validate(ds):
        print(f"warning: {w}", file=sys.stderr, flush=True)
    if test is not None:
        test_ds = load_dataset(test, min_labels=1)
        extra = sorted(set(test_ds.labels) - set(ds.labels))
        if extra:
            raise GestureError(f"test set {test} has label(s) {extra} that the training set {data} lacks; "
                               f"the model can only predict {ds.labels}")
        train_takes, test_takes, held = ds.takes, test_ds.takes, []
        what = f"test set {test}"
    else:
        split = default_split(ds)
        train_takes, test_takes, held = split_takes(ds, split, seed)
        what = f"{split}: {', '.join(held)}" if held else split
    cover = coverage_warning(test_takes, ds.labels, what)
    if cover:
        print(f"warning: {cover}", file=sys.stderr, flush=True)
    cv, notes = cv_folds(train_takes, ds.labels, folds, seed)  # refuses too little data before any training
    for note in notes:
        print(f"note: {note}", file=sys.stderr, flush=True)
    space = search_space(train_takes)

    quiet_tensorflow_logs()
    import optuna
    from tqdm import tqdm

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage, out)
    study = optuna.create_study(study_name=STUDY_NAME, storage=store, load_if_exists=True,
                                directions=["maximize", "minimize"])
    # a new sampler seed per (re)start and per worker: a resumed or joined study must not replay
    # the same random start-up candidates; a single process's run is reproducible from --seed
    salt = os.getpid() % 997 if worker else 0
    study.sampler = optuna.samplers.TPESampler(seed=seed * 1000 + len(study.trials) + salt,
                                               n_startup_trials=min(8, max(2, trials // 3)), multivariate=True)
    key = {"dataset": str(Path(data).resolve()), "test": held, "folds": len(cv), "epochs": epochs,
           "limit_per_label": limit_per_label, "space": space}
    if test is not None:
        key["test_set"] = str(Path(test).resolve())
    if "key" not in study.user_attrs:
        study.set_user_attr("key", key)
    elif study.user_attrs["key"] != json.loads(json.dumps(key)):
        raise GestureError(f"the study in {storage or out / 'study.db'} was started with other settings "
                           f"({study.user_attrs['key']}); use another --out or --storage")
    labels, n_classes = ds.labels, len(ds.labels)
    me = f"{os.uname().nodename}:{os.getpid()}"
    FAIL = optuna.trial.TrialState.FAIL

    def counts() -> tuple[int, int]:
        """(finished, claimed): complete or pruned trials, and those plus the ones running anywhere."""
        ts = study.get_trials(deepcopy=False)
        return (sum(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in ts),
                sum(t.state != FAIL for t in ts))

    def claim(trial) -> None:
        """Keep a place among the ``trials`` asked for, or give this trial up as surplus.

        Places go by creation order (the storage's trial id): a trial with ``trials`` claimed
        (not failed) trials ahead of it is surplus. Checked when it starts and again before it
        reports, because two processes can start their last trial at the same moment without
        seeing each other's: by the second check both are stored, and only the later one yields.
        A surplus trial is failed (a failed trial counts for nothing), so the study ends with
        exactly ``trials`` finished trials whatever the number of workers."""
        ahead = sum(1 for t in study.get_trials(deepcopy=False) if t._trial_id < trial._trial_id and t.state != FAIL)
        if ahead >= trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"{ahead} trials claimed before it")

    def objective(trial) -> tuple[float, float]:
        claim(trial)
        trial.set_user_attr("worker", me)
        c = suggest(trial, space, train_takes)
        n_ch = 6 if c.channels == "imu" else 3
        m = measure_untrained(c, n_ch, n_classes, seed, cost_probe)
        for k, v in m.items():
            trial.set_user_attr(k, v)
        problems = over_budget(m, budget)
        if problems:
            trial.set_user_attr("over_budget", problems)
            claim(trial)
            raise optuna.TrialPruned("; ".join(problems))
        accs = cross_validate(ds, cv, c, epochs=epochs, seed=seed, limit_per_label=limit_per_label)
        trial.set_user_attr("fold_accuracy", accs)
        trial.set_user_attr("cv_accuracy", float(np.mean(accs)))
        claim(trial)
        return float(np.mean(accs)), float(m["instructions"])

    start = counts()[0]
    if not quiet and start < trials:
        per_trial = estimate_trial_seconds(cv, len(ds.labels), epochs, seed)
        todo = trials - start
        print(f"each trial: {len(cv)} folds x {epochs} epochs, about {per_trial:.0f} s for a default-sized candidate "
              f"(measured here; the largest candidates up to ~3x that); {todo} trial(s): about {todo * per_trial / 60:.1f} min"
              + (f", stopping new trials after {timeout:.0f} s" if timeout else "")
              + ("; the first M4 measurement also builds the Cortex-M4 runtime (minutes, once)" if cost_probe else ""),
              file=sys.stderr, flush=True)
    bar = tqdm(total=trials, initial=min(start, trials), desc="tune", unit="trial", file=sys.stderr, disable=quiet)
    deadline = time.monotonic() + timeout if timeout else None
    said_waiting = False
    with _quiet_surplus():
        while deadline is None or time.monotonic() < deadline:
            before, claimed = counts()
            if before >= trials:
                break
            if claimed >= trials:  # the last places are taken by trials running in other processes
                if worker:
                    break
                if not said_waiting:
                    bar.write(f"waiting for {claimed - before} trial(s) running in other processes", file=sys.stderr)
                    said_waiting = True
                time.sleep(WAIT_S)
                continue
            try:
                study.optimize(objective, n_trials=1, catch=(), gc_after_trial=True)
            except SurplusTrial:
                pass  # another process took the place first; the loop sees the study as it is now
            bar.update(max(0, min(counts()[0], trials) - before))
    bar.close()

    rows = _rows(study)
    chosen = choose(rows)
    if worker:
        return TuneResult(out, STUDY_NAME, chosen, rows, None)
    if chosen is None:
        raise GestureError(f"no candidate within the budget ({budget}) among {len(rows)} trial(s); "
                           "raise --budget-* or --trials")
    tune_summary = {"tune": {"study": STUDY_NAME, "storage": storage or str(out / "study.db"), "trials": len(rows),
                             "chosen_trial": chosen["trial"], "cv_accuracy": chosen["cv_accuracy"],
                             "fold_accuracy": chosen["fold_accuracy"], "budget": budget, "folds": len(cv),
                             "instructions": chosen["instructions"],
                             "instructions_source": chosen["instructions_source"]}}
    _write_report(out, rows, chosen, budget, labels, held, len(cv), space)
    from training.train import train

    c = candidate_of(chosen)
    r = train(data, out / "model", test=test, seed=seed, rate_hz=c.rate_hz, window=c.window, channels=c.channels,
              augment=c.augment, augment_strength=c.augment_strength, architecture=c.architecture,
              epochs=final_epochs, limit_per_label=limit_per_label, quiet=quiet, extra_report=tune_summary)
    return TuneResult(out, STUDY_NAME, chosen, rows, r.report)


# ----------------------------------------------------------------------------- report

def _describe(r: dict[str, Any]) -> str:
    p = r["params"]
    return (f"{p['family']} d{p['depth']} w{p['width']} k{p['kernel']} {p.get('head', DEFAULT_HEAD)}, "
            f"{p['rate_hz']} Hz x {r['window']}, "
            f"{p['channels']}, aug {p['augment']}x{p['augment_strength']:.2f}")


def pareto_plot(rows: list[dict[str, Any]], chosen: dict[str, Any], budget: dict[str, int]) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["state"] == "complete"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for flag, style in ((False, dict(c="0.6", s=18, label="candidate")), (True, dict(c="C0", s=30, label="Pareto front"))):
        pts = [r for r in done if r["pareto"] == flag]
        ax.scatter([r["instructions"] for r in pts], [100 * r["cv_accuracy"] for r in pts], **style)
    ax.scatter([chosen["instructions"]], [100 * chosen["cv_accuracy"]], marker="*", s=160, c="C3", label="chosen")
    ax.axvline(budget["instructions"], ls="--", c="C3", lw=0.8, label="instruction budget")
    ax.set_xlabel("instructions per inference (M4)")
    ax.set_ylabel("int8 accuracy, person CV (%)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _write_report(out: Path, rows: list[dict[str, Any]], chosen: dict[str, Any], budget: dict[str, int],
                  labels: list[str], held: list[str], n_folds: int, space: dict[str, Any]) -> None:
    done = sorted((r for r in rows if r["state"] == "complete"), key=lambda r: -r["cv_accuracy"])
    pruned = [r for r in rows if r["state"] == "pruned"]
    lines = ["# gesture tune", "",
             f"Labels {', '.join(labels)}. Test people set aside before the search: {', '.join(held) or '(random split)'}; "
             f"they are never scored here. Each candidate: {n_folds}-fold person-wise cross-validation on the training people, "
             "int8 balanced accuracy (mean of the labels' recalls) in the TFLM interpreter; bytes and arena measured on the int8 model; instructions "
             f"{'measured on the Cortex-M4 (QEMU)' if chosen['instructions_source'] == 'measured' else 'estimated from the layers (training/m4_cost.py)'}.",
             f"Budget: model ≤ {budget['flash']:,} bytes, arena ≤ {budget['arena']:,} bytes, ≤ {budget['instructions']:,} "
             f"instructions per inference. Rates searched: {space['rates']} Hz; channels {space['channels']}.", "",
             f"**Chosen: trial {chosen['trial']}** ({_describe(chosen)}): cross-validated int8 accuracy "
             f"{chosen['cv_accuracy']:.1%}, {chosen['model_bytes']:,} bytes, arena {chosen['arena_bytes']:,} bytes, "
             f"{chosen['instructions']:,} instructions (the cheapest within {SELECT_TOLERANCE * 100:g} percentage point of the best "
             "cross-validated accuracy). "
             "Its final model and test-people accuracy: [model/report.md](model/report.md).", "",
             "![Pareto front](pareto.png)", "",
             "| trial | Pareto | CV int8 balanced acc | folds | candidate | model bytes | arena | MACs | instructions |",
             "|---:|:---:|---:|---|---|---:|---:|---:|---:|"]
    for r in done:
        folds = " ".join(f"{a:.0%}" for a in r["fold_accuracy"] or [])
        lines.append(f"| {r['trial']} | {'★' if r['pareto'] else ''} | {r['cv_accuracy']:.1%} | {folds} | {_describe(r)} | "
                     f"{r['model_bytes']:,} | {r['arena_bytes']:,} | {r['macs']:,} | {r['instructions']:,} |")
    if pruned:
        lines += ["", f"Over budget, not trained ({len(pruned)}): "
                  + "; ".join(f"trial {r['trial']} ({', '.join(r['over_budget'] or [])})" for r in pruned), ""]
    atomic_write_text(out / "tune.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "tune.json", json.dumps({"chosen": chosen, "budget": budget, "trials": rows}, indent=1) + "\n")
    atomic_write_bytes(out / "pareto.png", pareto_plot(rows, chosen, budget))
