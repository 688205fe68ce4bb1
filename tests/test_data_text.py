"""The generated sentence set is deterministic, distinct and phonetically rich."""
from engine.training.text import diphone_coverage, generate_sentences, load_cmudict


def test_sentences_deterministic_distinct_and_rich():
    a = generate_sentences(150, seed=1)
    assert a == generate_sentences(150, seed=1)
    assert a != generate_sentences(150, seed=2)
    assert len(a) == 150 and len(set(a)) == 150
    assert all(s[0].isupper() and s[-1] in ".?!" for s in a)
    assert diphone_coverage(a) > 0.45
    assert diphone_coverage(a) > diphone_coverage(a[:15]) + 0.2


def test_cmudict_loads():
    lex = load_cmudict()
    assert lex["hello"] == ["hh", "ah", "l", "ow"]
    assert len(lex) > 100_000
