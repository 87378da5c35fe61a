"""Splits that can be scored: every held-out part covers every label, every training part keeps
enough takes of every label.

A test set (or a validation set, or a cross-validation fold) that misses a label measures
nothing about that label, and one that holds a single label measures nothing at all: a test
person who recorded only ``flex`` scores 0 % or 100 % whatever the model learnt. So people
(or sessions) are drawn for a held-out part until it covers every label, among several random
orders of the people; when no choice can, the closest one is used and the missing labels are
named. Without people, takes are dealt per label (stratified).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from capture.errors import GestureError
from capture.takes import Take

MIN_TRAIN_PER_LABEL = 2  # a label needs this many training takes to be learnt at all
ORDERS_TRIED = 200  # random orders of the people tried before settling for the closest split
MAX_HELD_FRACTION = 0.5  # a held-out part never takes more than this share of the takes


def group_of(t: Take, key: str) -> str:
    return str(t.meta.get(key, "") or "")


def missing_labels(takes: list[Take], labels: list[str]) -> list[str]:
    present = {t.label for t in takes}
    return [label for label in labels if label not in present]


def short_labels(takes: list[Take], labels: list[str], need: int = MIN_TRAIN_PER_LABEL) -> list[str]:
    counts = Counter(t.label for t in takes)
    return [label for label in labels if counts[label] < need]


@dataclass
class GroupChoice:
    held: list[str]
    missing: list[str]  # labels the held-out groups lack ([] when the split covers every label)


def choose_groups(takes: list[Take], key: str, labels: list[str], fraction: float,
                  rng: np.random.Generator, max_fraction: float = MAX_HELD_FRACTION) -> GroupChoice:
    """Groups (people or sessions) to hold out: at least ``fraction`` of the takes, every label
    covered, every label left with MIN_TRAIN_PER_LABEL training takes.

    The first order tried is the seed's plain permutation of the groups (what the kit drew
    before labels were checked), so a dataset whose people each recorded every label gets the
    same split as before. Takes without a group always stay in training.
    """
    groups: dict[str, list[Take]] = {}
    for t in takes:
        groups.setdefault(group_of(t, key), []).append(t)
    named = sorted(g for g in groups if g)
    total = len(takes)
    best: tuple[tuple[int, int, int], list[str], list[str]] | None = None
    for attempt in range(ORDERS_TRIED):
        order = [named[i] for i in rng.permutation(len(named))]
        held: list[str] = []
        n = 0
        for g in order:
            covered = not missing_labels([t for h in held for t in groups[h]], labels)
            if held and n >= fraction * total and covered:
                break
            if held and n + len(groups[g]) > max_fraction * total:
                continue  # too big to add; a smaller group later may still cover the missing label
            held.append(g)
            n += len(groups[g])
        if len(held) == len(named):  # never hold out everyone
            held = held[:-1]
        test = [t for h in held for t in groups[h]]
        train = [t for t in takes if group_of(t, key) not in set(held)]
        miss, short = missing_labels(test, labels), short_labels(train, labels)
        score = (len(short), len(miss), abs(len(test) - int(fraction * total)))
        if best is None or score < best[0]:
            best = (score, held, miss)
        if not miss and not short:
            break
    assert best is not None
    return GroupChoice(sorted(best[1]), best[2])


def stratified_parts(takes: list[Take], k: int, rng: np.random.Generator) -> list[list[Take]]:
    """``k`` parts with each label's takes dealt round-robin from a random start (stratified)."""
    parts: list[list[Take]] = [[] for _ in range(k)]
    by_label: dict[str, list[Take]] = {}
    for t in takes:
        by_label.setdefault(t.label, []).append(t)
    for label in sorted(by_label):
        ts = by_label[label]
        start = int(rng.integers(k))
        for j, i in enumerate(rng.permutation(len(ts))):
            parts[(start + j) % k].append(ts[int(i)])
    return parts


def folds_possible(takes: list[Take], labels: list[str], k: int) -> int:
    """Folds for a stratified take split with every label in each dev fold and
    MIN_TRAIN_PER_LABEL training takes of it in every fold: the most up to ``k``, else the
    fewest above it (3 takes of a label only split as 3 folds of 1); 0 when none can."""
    counts = Counter(t.label for t in takes)
    smallest = min(counts[label] for label in labels)
    for kk in [*range(k, 1, -1), *range(k + 1, smallest + 1)]:
        if all(counts[label] >= kk and counts[label] - -(-counts[label] // kk) >= MIN_TRAIN_PER_LABEL
               for label in labels):
            return kk
    return 0


def cv_folds(takes: list[Take], labels: list[str], k: int, seed: int
             ) -> tuple[list[tuple[list[Take], list[Take]]], list[str]]:
    """Cross-validation folds over ``takes`` and notes on how they were made.

    With people: group K-fold (a person's takes all in one fold), each dev fold covering every
    label and each fit fold keeping every label; fewer folds when the people allow no more;
    when no person split can, the takes are dealt stratified by label (said in the notes).
    Without people: stratified K-fold over takes. Raises GestureError (before any training) when
    a label has too few takes for even two folds.
    """
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    people = sorted({group_of(t, "subject") for t in takes} - {""})
    counts = Counter(t.label for t in takes)
    too_few = [f"'{label}' ({counts[label]})" for label in labels
               if counts[label] < MIN_TRAIN_PER_LABEL + 1]
    if too_few:
        raise GestureError(f"too few takes for cross-validation: label(s) {', '.join(too_few)} outside the test set; "
                           f"each needs at least {MIN_TRAIN_PER_LABEL + 1} ({MIN_TRAIN_PER_LABEL} to train on and 1 to "
                           "score in every fold); record more takes")
    if len(people) >= 2:
        sizes = {p: sum(group_of(t, "subject") == p for t in takes) for p in people}
        for kk in range(min(k, len(people)), 1, -1):
            for attempt in range(ORDERS_TRIED):
                # largest first (balanced folds); then random orders, when that one misses a label
                order = (sorted(people, key=lambda p: (-sizes[p], rng.random())) if attempt == 0
                         else [people[int(i)] for i in rng.permutation(len(people))])
                bins: list[list[str]] = [[] for _ in range(kk)]
                load = [0] * kk
                for p in order:
                    i = int(np.argmin(load))
                    bins[i].append(p)
                    load[i] += sizes[p]
                folds = [([t for t in takes if group_of(t, "subject") not in b],
                          [t for t in takes if group_of(t, "subject") in b]) for b in bins]
                if all(not missing_labels(dev, labels) and not short_labels(fit, labels) for fit, dev in folds):
                    if kk < k:
                        notes.append(f"{kk} person-wise folds instead of {k}: with more, some fold's people "
                                     "would miss a label")
                    return folds, notes
        notes.append(f"no person-wise folds where every fold's people recorded every label ({len(people)} people); "
                     "takes are dealt into folds stratified by label, so a person may sit on both sides")
    kk = folds_possible(takes, labels, k)
    if kk != k:
        notes.append(f"{kk} folds instead of {k}: the smallest label has {min(counts[label] for label in labels)} takes")
    parts = stratified_parts(takes, kk, rng)
    ids = [{id(t) for t in p} for p in parts]
    return [([t for t in takes if id(t) not in s], p) for s, p in zip(ids, parts)], notes
