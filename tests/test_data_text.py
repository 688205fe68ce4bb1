"""The generated sentence set is deterministic, distinct and phonetically rich."""
from engine.data.text import diphone_coverage, generate_sentences, load_cmudict


def test_sentences_deterministic_distinct_and_rich():
    a = generate_sentences(300, seed=1)
    assert a == generate_sentences(300, seed=1)
    assert a != generate_sentences(300, seed=2)
    assert len(a) == 300 and len(set(a)) == 300
    assert all(s[0].isupper() and s[-1] in ".?!" for s in a)
    assert diphone_coverage(a) > 0.6
    assert diphone_coverage(a) > diphone_coverage(a[:30]) + 0.2


def test_cmudict_loads():
    lex = load_cmudict()
    assert lex["hello"] == ["hh", "ah", "l", "ow"]
    assert len(lex) > 100_000
