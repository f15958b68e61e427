from __future__ import annotations

from nlu.hybrid import OUT_OF_SCOPE_VETO, rank
from nlu.interpreter import Understanding


def _rasa(text, intent="faq", ranking=()):
    return Understanding(text, intent, 0.99, "rasa", faq_ranking=tuple(ranking))


def test_without_rasa_every_strategy_is_lexical(retriever):
    q = "宝鸡哪里可以办卡"
    lexical = rank(q, retriever, strategy="lexical")
    lex_nlu = Understanding(q, "faq/sx.branch.baoji", 0.8, "lexical")
    assert rank(q, retriever, nlu=lex_nlu, strategy="hybrid") == lexical
    assert rank(q, retriever, nlu=None, strategy="rasa") == lexical


def test_rasa_confidence_decides_between_close_candidates(retriever):
    # Lexically a near tie between mail delivery and the Zhuhai written application: Rasa's
    # confidence in the runner-up (whichever it is) decides.
    q = "收卡人能写我们公司前台吗"
    lexical = rank(q, retriever, strategy="lexical")
    first, second = lexical[0], lexical[1]
    assert {first.entry.id, second.entry.id} == {"zh.system.gongkua_letter", "sx.card.mail_delivery"}
    assert first.score - second.score < 0.1
    hybrid = rank(q, retriever, nlu=_rasa(q, ranking=[(second.entry.id, 0.6)]), strategy="hybrid")
    assert hybrid[0].entry.id == second.entry.id
    # Rasa's confidence also lifts the answer over the lexical one.
    assert hybrid[0].confidence > second.confidence


def test_a_clear_lexical_winner_survives_rasa_disagreement(retriever):
    q = "领卡能让同事代领吗"
    hybrid = rank(q, retriever, nlu=_rasa(q, ranking=[("sx.card.online", 0.9)]), strategy="hybrid")
    assert hybrid[0].entry.id == "sx.card.onsite_pickup"


def test_out_of_scope_vetoes_weak_answers(retriever):
    q = "推荐几部好看的电影"
    hits = rank(q, retriever, nlu=_rasa(q, intent="out_of_scope"), strategy="hybrid")
    assert all(h.confidence == 0.0 or h.confidence >= OUT_OF_SCOPE_VETO for h in hits)
    assert hits[0].confidence == 0.0


def test_rasa_alone_follows_its_intent_and_the_region(retriever):
    q = "法人卡去哪办"
    ranking = [("zh.jc.cards", 0.6), ("sx.card.channels", 0.3)]
    hits = rank(q, retriever, nlu=_rasa(q, ranking=ranking), strategy="rasa")
    assert [h.entry.id for h in hits] == ["zh.jc.cards", "sx.card.channels"]
    assert all(h.confidence == 1.0 for h in hits)
    only_sx = rank(q, retriever, region="shaanxi", nlu=_rasa(q, ranking=ranking), strategy="rasa")
    assert [h.entry.id for h in only_sx] == ["sx.card.channels"]
    refused = rank(q, retriever, nlu=_rasa(q, intent="out_of_scope", ranking=ranking), strategy="rasa")
    assert all(h.confidence == 0.0 for h in refused)
