"""The synthesis: verdicts and effects gathered from results JSON, sentences generated from
them, missing runs named."""

import json

import pytest

from repsim_utils.base import integrity
from repsim_utils.book.record import RecordError, RunRecord
from repsim_utils.chapters import synthesis


def record(chapter, run, verdicts, results=None, kinds=None):
    kinds = kinds or {}
    return RunRecord(chapter, run, results=results or {}, verdicts=[
        {"id": i, "paper": p, "kind": kinds.get(i, "study" if p == "study" else "paper"),
         "claim": f"claim {i}", "outcome": o, "value": v, "ci": [v - 0.1, v + 0.1],
         "uu": {"name": "untrained vs untrained", "value": 0.0}, "null": None}
        for i, p, o, v in verdicts])


def test_answer_counts_the_study_verdicts_of_each_lens_and_names_absent_lenses(tmp_path):
    recs = {
        "convergent_learning__a": record("convergent_learning", "a", [
            ("trained_match_more", "study", "agrees", 0.3), ("x", "li", "disagrees", -0.2),
            ("semi", "li", "agrees", 0.05)], kinds={"semi": "sanity"}),
        "convergent_learning__b": record("convergent_learning", "b", [
            ("trained_match_more", "study", "inconclusive", 0.05)]),
        "standard_measures__a": record("standard_measures", "a", [
            ("cka_trained_more_alike", "study", "agrees", 0.2),
            ("cka_identifies_layers", "k", "agrees", 0.5),
            ("cca_identifies_layers", "k", "not testable", 0.0)],
            kinds={"cca_identifies_layers": "sanity"}),
    }
    lines = synthesis.answer(synthesis.verdict_frame(recs))
    units = next(line for line in lines if line.startswith("**units"))
    assert "in 1 of 2 runs" in units and "a: agrees" in units and "b: inconclusive" in units
    assert any("subspaces" in line and "no result" in line for line in lines)
    assert "than two untrained ones" in units
    std = next(line for line in lines if line.startswith("**standard"))
    assert "1 of 1 (measure, run)" in std and "untrained pairs): 1 agrees of 1;" in std
    assert "not counted: 1." in std  # not testable: counted apart, never as agreement
    # every kind counted apart; a sanity check is never counted as agreement with a paper
    papers = next(line for line in lines if line.startswith("**paper claims"))
    assert "1 agrees, 1 disagrees of 2 verdicts" in papers
    study = next(line for line in lines if line.startswith("**study questions"))
    assert "2 agrees, 1 inconclusive of 3 verdicts" in study
    sanity = next(line for line in lines if line.startswith("**sanity checks"))
    assert "not counted as agreement" in sanity and "2 verdicts" in sanity
    assert "1 agrees, 1 not testable" in sanity


def publish(folder, chapter, run, rec):
    """A record sealed as the driver seals it, with its page and figures."""
    nb = folder / "executed" / f"{chapter}__{run}.ipynb"
    figures = folder / "figures" / chapter / run
    figures.mkdir(parents=True)
    nb.write_text("{}")
    sealed = integrity.seal(rec.to_json(), nb, figures)
    (folder / "executed" / f"{chapter}__{run}.json").write_text(json.dumps(sealed))


def test_load_names_missing_and_unsealed_runs_and_effects_turn_distances_round(tmp_path):
    (tmp_path / "executed").mkdir()
    row = {"layer": "l1", "statistic": "eps50", "variant": "raw", "effect": -0.2,
           "effect_low": -0.3, "effect_high": -0.1, "effect_uu": 0.1, "effect_uu_low": 0.05,
           "effect_uu_high": 0.2}
    rec = record("subspace_match", "a", [], {"sm_thresholds": [row]})
    publish(tmp_path, "subspace_match", "a", rec)
    (tmp_path / "executed" / "geometry__c.json").write_text(json.dumps(rec.to_json()))  # no seal
    found, missing = synthesis.load(["subspace_match__a", "geometry__b", "geometry__c"],
                                    tmp_path)
    assert list(found) == ["subspace_match__a"] and missing[0] == "geometry__b"
    assert missing[1].startswith("geometry__c (refused: executed/geometry__c.json carries no")
    sentence = synthesis.missing_sentence(missing, len(found))
    assert "`geometry__b`" in sentence and "Missing runs" in sentence
    # none missing: a sentence, never an empty output (which shows as a Python repr)
    assert synthesis.missing_sentence([], 1) == ("All 1 expected runs have published results; "
                                                 "none is missing.")
    eff = synthesis.effect_frame(found).set_index("reference")
    assert len(eff) == 2
    e = eff.loc[synthesis.TU]
    assert (e.effect, e.low, e.high) == (0.2, 0.1, 0.3)  # lower eps50 = more alike
    e = eff.loc[synthesis.UU]
    assert (e.effect, e.low, e.high) == (-0.1, -0.2, -0.05)  # tt - uu beside tt - tu


def test_the_run_record_round_trips_and_refuses_other_shapes(tmp_path):
    rec = record("geometry", "b", [("seeds_agree", "study", "agrees", 0.4)], {"k": 1.5})
    assert RunRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    assert rec.name == "geometry__b" and "digest" not in rec.to_json()
    data = rec.to_json()
    with pytest.raises(RecordError, match=r"missing \['verdicts'\]"):
        RunRecord.from_json({k: v for k, v in data.items() if k != "verdicts"}, "x.json")
    with pytest.raises(RecordError, match=r"unknown \['extra'\]"):
        RunRecord.from_json(data | {"extra": 1}, "x.json")
    with pytest.raises(RecordError, match="not a JSON object"):
        RunRecord.from_json([1], "x.json")
    # a sealed record of another shape is refused by the synthesis, with the reason
    (tmp_path / "executed").mkdir()
    publish(tmp_path, "geometry", "b", rec)
    path = tmp_path / "executed" / "geometry__b.json"
    sealed = json.loads(path.read_text())
    sealed.pop("verdicts")
    sealed.pop("digest")
    path.write_text(json.dumps(integrity.seal(sealed, tmp_path / "executed" /
                                              "geometry__b.ipynb",
                                              tmp_path / "figures" / "geometry" / "b")))
    found, missing = synthesis.load(["geometry__b"], tmp_path)
    assert not found and "not a run record of this version" in missing[0]


def test_a_new_chapter_is_one_registry_entry(monkeypatch):
    """A chapter registered with a lens is read by the synthesis (its headline verdict and its
    effects) and by the driver's parameter checks, with no other edit."""
    from repsim_utils.chapters import schema
    from repsim_utils.chapters.registry import CHAPTERS, Chapter, Lens

    toy = Chapter("toy_lens", "Toy lens", schema.Schema({"k": schema.Range(0, 3)}),
                  lens=Lens("toy lens", "toy_more", "toy_summary", "stat", "toy: stat"))
    monkeypatch.setitem(CHAPTERS, "toy_lens", toy)
    row = {"layer": "l1", "statistic": "stat", "effect": 0.2, "effect_low": 0.1,
           "effect_high": 0.3, "effect_uu": 0.1, "effect_uu_low": 0.0, "effect_uu_high": 0.2}
    recs = {"toy_lens__a": record("toy_lens", "a", [("toy_more", "study", "agrees", 0.2)],
                                  {"toy_summary": [row]})}
    lines = synthesis.answer(synthesis.verdict_frame(recs))
    assert any(line.startswith("**toy lens**") and "in 1 of 1 runs" in line for line in lines)
    assert list(synthesis.effect_frame(recs).lens) == ["toy: stat"] * 2
    assert "toy_lens" in schema.chapters()
    with pytest.raises(schema.ParameterError, match="'k'"):
        schema.check("toy_lens", {"k": 7})


def test_the_ladder_sentences_name_each_layers_rung_or_none():
    rows = [{"layer": "act1", "rung": "orthogonal", "group": "a rotation or reflection",
             "share": 0.6, "share_low": 0.55, "share_high": 0.65, "best_rung": "linear",
             "best_share": 0.7},
            {"layer": "act2", "rung": None, "group": None, "best_rung": "identity",
             "best_share": 0.01}]
    recs = {"standard_measures__a": record("standard_measures", "a", [],
                                           results={"stdm_ladder_lowest": rows})}
    ladder = synthesis.ladder_frame(recs)
    assert ladder.rung.iloc[0] == "orthogonal" and ladder.rung.isna().tolist() == [False, True]
    (line,) = synthesis.ladder_lines(ladder)
    assert "act1 up to a rotation or reflection (share 0.6 [0.55, 0.65])" in line
    assert "act2 at no rung" in line and line.startswith("**The same up to what** (a")


def test_the_grounding_line_counts_each_measures_verdicts_over_runs():
    recs = {f"standard_measures__{r}": record("standard_measures", r, [
        ("linear_cka_grounded", "study", o, -0.3), ("rsa_grounded", "study", "inconclusive", 0.1)])
        for r, o in (("a", "agrees"), ("b", "inconclusive"))}
    line = synthesis.grounding_line(synthesis.verdict_frame(recs))
    assert "linear_cka: 1 agrees, 1 inconclusive" in line and "rsa: 2 inconclusive" in line
    assert synthesis.grounding_line(synthesis.verdict_frame({})) is None


def test_overall_answer_follows_its_rule():
    assert synthesis.overall(["agrees", "agrees"]) == "Yes"
    assert synthesis.overall(["disagrees", "inconclusive"]) == "No"
    assert synthesis.overall(["agrees", "inconclusive"]) == "Partly"
    assert synthesis.overall([]) == "No answer yet"


def test_short_answer_counts_the_lens_verdicts_and_reads_the_ladder():
    import pandas as pd

    (lens, (chapter, vid)), *_ = synthesis.lens_verdicts().items()
    rows = [{"chapter": chapter, "run": run, "id": vid, "outcome": o}
            for run, o in (("a", "agrees"), ("b", "disagrees"), ("c", "agrees"))]
    rows.append({"chapter": "standard_measures", "run": "a", "id": "cka_grounded",
                 "outcome": "inconclusive"})
    verdicts = pd.DataFrame(rows)
    ladder = pd.DataFrame([{"run": "a", "layer": "act1", "group": "a rotation"},
                           {"run": "a", "layer": "act2", "group": "a rotation"},
                           {"run": "b", "layer": "act1", "group": None},
                           {"run": "b", "layer": "act2", "group": "the function"}])
    lines = synthesis.short_answer(verdicts, ladder, {"a": "MLP on digits"})
    assert lines[0].startswith("**Partly.**") and "in 2 of 3 comparisons" in lines[0]
    assert "less alike in 1" in lines[0]
    assert "MLP on digits: every layer up to a rotation" in lines[1]
    assert "b: act1 at no rung, act2 up to the function" in lines[1]
    assert "0 of 1 (measure, run)" in lines[2]
