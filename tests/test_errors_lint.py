"""Issue 13 item 5: validation lives in jopt/_check/; a new inline rule elsewhere fails here.

Each file outside ``_check`` may keep at most the ``raise ValueError/TypeError`` sites
listed below (those that remain, mostly in modules other work owns, to be moved into
``_check`` as they are touched); a new one, a new file with one, or a private
``def check_...`` rule outside ``_check`` fails. Lower a count when you move a rule.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent / "jopt"
RAISE = re.compile(r"raise (ValueError|TypeError)\b")
PRIVATE_RULE = re.compile(r"^\s*def check_\w+\(", re.MULTILINE)

ALLOWED_RAISES = {
    "jopt/_flat/_capability.py": 2,
    "jopt/tree/_linear_algebra.py": 3,
    "jopt/contrib/_dadapt.py": 1,
    "jopt/contrib/_dog.py": 1,
    "jopt/contrib/_galore.py": 3,
    "jopt/contrib/_momo.py": 1,
    "jopt/contrib/_muon.py": 2,
    "jopt/contrib/_newton_schulz.py": 3,
    "jopt/contrib/_privacy.py": 1,
    "jopt/contrib/_sam.py": 2,
    "jopt/contrib/_schedule_free.py": 1,
    "jopt/contrib/_sophia.py": 1,
    "jopt/losses/_ctc.py": 4,
    "jopt/losses/_embedding.py": 1,
    "jopt/losses/_segmentation.py": 2,
    "jopt/losses/_softmax.py": 2,
    "jopt/losses/_sparse.py": 1,
    "jopt/metrics.py": 5,
    "jopt/microbatching/_accumulators.py": 3,
    "jopt/microbatching/_microbatch.py": 3,
    "jopt/schedules/_basic.py": 1,
    "jopt/schedules/_cycles.py": 3,
    "jopt/schedules/_injection.py": 3,
    "jopt/schedules/_join.py": 4,
    "jopt/schedules/_warmup.py": 1,
    "jopt/train/_checkpoint_match.py": 3,
    "jopt/train/_checkpoint_tree.py": 2,
    "jopt/train/_compiled.py": 1,
    "jopt/train/_epoch.py": 1,
    "jopt/train/_epoch_end.py": 2,
    "jopt/train/_loop.py": 4,
    "jopt/train/_loss_output.py": 5,
    "jopt/train/_sources.py": 2,
    "jopt/train/_state.py": 2,
    "jopt/train/_step.py": 3,
    "jopt/train/checkpoint.py": 2,
    "jopt/train/data.py": 3,
    "jopt/train/early_stopping.py": 3,
    "jopt/train/sharding.py": 9,
    "jopt/transforms/_accumulation.py": 2,
    "jopt/transforms/_clipping.py": 4,
    "jopt/transforms/_collectives.py": 1,
    "jopt/transforms/_combining.py": 2,
    "jopt/transforms/_conditioning.py": 2,
    "jopt/transforms/_freezing.py": 1,
    "jopt/transforms/_linesearch.py": 3,
    "jopt/transforms/_lookahead.py": 1,
    "jopt/transforms/_masking.py": 1,
    "jopt/transforms/_monitoring.py": 5,
    "jopt/transforms/_noise.py": 3,
    "jopt/transforms/_partition.py": 3,
    "jopt/transforms/_plateau.py": 1,
    "jopt/transforms/_polyak.py": 1,
    "jopt/transforms/_regularization.py": 2,
    "jopt/transforms/_scaling.py": 1,
    "jopt/transforms/_sm3.py": 1,
    "jopt/transforms/_zoom.py": 1,
    "jopt/tree/_arithmetic.py": 5,
    "jopt/tune/_lr_range.py": 1,
    "jopt/tune/_population.py": 3,
    "jopt/tune/_results.py": 1,
    "jopt/tune/_search.py": 1,
    "jopt/tune/_space.py": 3,
}
ALLOWED_RULES = {
    "jopt/_flat/_capability.py": 1,
    "jopt/contrib/_dadapt.py": 1,
    "jopt/testing/_contract.py": 1,
    "jopt/train/_checkpoint_match.py": 1,
    "jopt/train/_epoch.py": 1,
    "jopt/train/_sources.py": 1,
}


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).as_posix()
        if not rel.startswith("jopt/_check/"):
            yield rel, path.read_text()


def test_no_new_inline_validation():
    grown = {
        rel: (len(RAISE.findall(text)), ALLOWED_RAISES.get(rel, 0))
        for rel, text in _sources()
        if len(RAISE.findall(text)) > ALLOWED_RAISES.get(rel, 0)
    }
    assert not grown, (
        f"new inline raise sites (file: (found, allowed)): {grown}; put the rule in "
        "jopt/_check/ (message '<name> must be <rule>, got <value>; <fix>') and call it"
    )


def test_no_private_copies_of_check_rules():
    found = {
        rel: len(PRIVATE_RULE.findall(text))
        for rel, text in _sources()
        if len(PRIVATE_RULE.findall(text)) > ALLOWED_RULES.get(rel, 0)
    }
    assert not found, f"private validation rules outside jopt/_check/: {found}; move them there"
