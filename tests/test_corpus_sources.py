"""docs/corpus.md is the provenance list of bench/corpus.py's SOURCES: every file the corpus is
built from is listed there with its repository, commit and path (no corpus needed)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_corpus_source_is_in_the_provenance_list():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("bench_corpus_sources", ROOT / "bench" / "corpus.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "bench"))
        sys.modules.pop("bench_corpus_sources", None)
    doc = (ROOT / "docs" / "corpus.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| ") and "/" in line]
    for src in (*mod.PUNCH_FLEX, *mod.PUNCH_FLEX_B):
        assert any(src.repo in r and src.commit in r and f"`{src.path}`" in r and src.licence in r for r in rows), src
    assert len({mod.subject_of(s.repo) for s in mod.PUNCH_FLEX}) == 8
    assert len({mod.subject_of(s.repo) for s in mod.PUNCH_FLEX_B}) == 7
    # a contributor is in one dataset only: person-wise scores need people apart
    assert not {mod.subject_of(s.repo) for s in mod.PUNCH_FLEX} & {mod.subject_of(s.repo) for s in mod.PUNCH_FLEX_B}
    assert not list((ROOT).glob("**/punch_flex/dataset.json"))  # the corpus is never in the repository
