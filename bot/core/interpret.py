"""The one order a typed message is read in while a walkthrough is asked for or under way.

Buttons (their labels typed, their numbers) are read before, by ``Walkthroughs.button``.
Then, in this order, the first reading that applies wins:

1. a company named in passing ("公司叫…"): it names the placeholder company;
2. the answer to what the bot asked: the company name, an option in the user's words (a
   question about an option is never its answer), a skip reason, a confirmation;
3. "done" in the user's words ("这步弄好啦", "统一版那步也交了": that step; "…做完了，下一步干啥"
   too), or a correction when it says it corrects ("不对，我们其实有卡");
4. a step command in any words: start (for another company too), where am I, restart,
   continue, back (to a step it names), skip (the step it names, with its reason);
5. a statement that settles choices ahead or changes one given before ("其实我们是线下办卡"),
   or says a step's result is held already ("海关注册登记我们几年前就有了": done);

and otherwise (``None``) the message is a question or a chat turn for the dialogue to
answer, after which the open question or step is offered again. Chat turns (greetings,
help, a person) are left to the dialogue before 4, as they always were.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.replies import Reply
from bot.core.state import ConversationState
from bot.core.walkthrough import Walkthroughs, is_question
from nlu.cues import default_cues
from nlu.interpreter import Understanding

__all__ = ["CHAT_INTENTS", "MOVES", "interpret"]

# Intents that move through the steps themselves: "done" in words does not override them.
MOVES = frozenset({"continue", "back", "skip", "restart", "where_am_i", "human", "help", "switch_company"})
# Intents the dialogue answers itself (before any step command).
# A "what next" question this short (characters) names nothing it follows ("下一步要干嘛呀").
_BARE_NEXT = 8
CHAT_INTENTS = frozenset({"greet", "thanks", "bye", "affirm", "deny", "help", "human", "card_status", "pair_agent"})


def interpret(
    wt: Walkthroughs,
    state: ConversationState,
    text: str,
    nlu: Understanding | None,
    intent: str,
    region: str | None,
    now: datetime,
) -> list[Reply] | None:
    """The walkthrough's reading of ``text`` (see the module's order), or None.

    ``text`` is the message as typed (names are kept as typed); commands and answers are
    read in ``nlu.plain``, the text spelt right. ``intent`` is the NLU's intent after the
    dialogue's checks; ``region`` a region the message names."""
    plain = nlu.plain.strip() if nlu is not None and nlu.plain.strip() else text
    walking = wt.active(state)
    # 1. The name of the company named "我的企业" for now, even while a choice is open.
    renamed = wt.rename_placeholder(state, text, now, nlu)
    if renamed is not None:
        return renamed
    if state.form is None and (intent.startswith("faq") or intent == "start_walkthrough"):
        wt.note_company(state, text)  # a company named with a question or a request
    # 2. What the bot asked.
    answered = wt.awaited_text(state, text, nlu, now)
    if answered is not None:
        return answered
    # 3. Done in words, whatever the NLU made of it (Rasa has read such a sentence as goodbye);
    # "我们是电商企业，这个备案做完了，下一步干啥": done, what it says noted, and the next step.
    cues = default_cues()
    before = cues.finished(plain) if walking and (intent not in MOVES or intent == "continue") else None
    if before and cues.says_done(before) and not wt.corrects(before) and not cues.supposes(plain):
        wt.note_in_passing(state, before, nlu)
        return wt.done_from_text(state, before, now)
    if before == "" and intent != "continue" and len(plain) <= _BARE_NEXT:
        return wt.what_next(state)  # "然后呢", "下一步干啥": nothing said done
    if walking and intent not in MOVES and cues.says_done(plain):
        corrected = wt.change_from_text(state, plain, nlu, now) if wt.corrects(plain) else None
        return corrected if corrected is not None else wt.done_from_text(state, plain, now)
    if intent in CHAT_INTENTS:
        return None
    # 4. Step commands.
    command = _command(wt, state, intent, plain, region, now)
    if command is not None:
        return command
    # 5. Statements that settle or change choices, or say a step's result is held already.
    if walking:
        changed = wt.change_from_text(state, plain, nlu, now)
        if changed is None and wt.says_step_held(state, plain):
            return wt.done_from_text(state, plain, now)
        return changed
    return None


def _command(
    wt: Walkthroughs, state: ConversationState, intent: str, text: str, region: str | None, now: datetime
) -> list[Reply] | None:
    """Walkthrough commands said in words; a question that merely resembles one is not."""
    if intent == "switch_company":
        return wt.companies(state)
    if intent in {"reminders_on", "reminders_off"}:
        return wt.set_reminders(state, intent == "reminders_on")
    # "…入网要怎么走流程，带我做一下": a request to start that ends the message starts,
    # whatever it asked before; any other command in a question is a question.
    cues = default_cues()
    last = (cues.clauses(text) or [text])[-1]
    if intent == "start_walkthrough":
        # "…你能带我办一下吗", "Can you walk me through it?": a request, asked politely.
        if is_question(last) and not any(cues.request(c) >= 0 for c in cues.clauses(text)[-2:]):
            return None
        # "珠海接入整体流程", "全部步骤列一下 陕西的": asking for the overview, which is answered
        # and offers the walkthrough (whichever engine read it as a start).
        if cues.without_overview(text) is not None and cues.request(text) < 0:
            return None
    elif is_question(text) and intent != "where_am_i":
        return None
    if intent in {"start_walkthrough", "restart"} and state.companies and wt.for_another_company(text):
        return wt.start_new_company(state, now, region)
    if intent == "start_walkthrough":
        return wt.start(state, now, region, said=text)
    if intent == "where_am_i":
        return [wt.checklist(state)]
    if intent == "restart" and state.walkthrough:
        return wt.restart(state, None, now)
    if not wt.active(state):
        return None
    if intent == "continue":
        return wt.done_from_text(state, text, now)  # "JC备案这块都办完了": that step
    if intent == "back":
        return wt.back(state, now, said=text)
    if intent == "skip":
        return wt.skip(state, now, said=text)
    return None
