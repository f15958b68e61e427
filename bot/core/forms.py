"""Form filling in chat: collect a company's profile field by field, then ask for documents.

One generic engine for every form of the catalog (``forms/data``): it asks the fields the
chosen forms still lack on the user's path (optional ones can be skipped), validates each
answer with the field's validator and explains a rejection with a correct example, accepts
several fields pasted at once ("单位名称：xx，统一社会信用代码：xx") and corrections at any
time ("改一下法人姓名", "法人姓名改成张三"), shows a summary to confirm, and finally returns
``FormRequest`` replies that the assistant renders to files. The profile belongs to the
company, so a value given once serves every later document.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.core.messages import Messages
from bot.core.replies import Button, FormRequest, Reply
from bot.core.state import Awaiting, Company, ConversationState, FormSession
from bot.core.walkthrough import is_question
from forms.catalog import Catalog, FieldDef, Form, applies
from forms.profile import (
    check_field,
    display_value,
    explain,
    missing_fields,
    needed_fields,
    required_missing,
    rule_errors,
)
from forms.validators import clean_text
from knowledge.loader import KnowledgeBase

__all__ = ["PREFIX", "FormFilling", "wants_document"]

PREFIX = "fm:"
_MAKE = re.compile(
    r"生成|填写?|帮我[做出写弄]|制作|做一份|出一份|写一份|准备一份|要一份|打印|下载|导出|模板|generate|fill|make|draft"
)
_EDIT = re.compile(
    r"^(?:请|帮我|麻烦)*(?:改一下|修改一下|修改|更改|更正|改|换一下|重填|重新填写?|change|edit|correct)(?:一下)?\s*(?P<what>.+?)[吧。.!！]*$",
    re.IGNORECASE,
)
_SET = re.compile(
    r"^(?P<what>.+?)\s*(?:改成|改为|换成|应该是|应为|更正为|should be|is now)\s*(?P<value>.+)$", re.IGNORECASE
)
_WRONG = re.compile(r"^(?P<what>.+?)(?:填错了|写错了|错了|不对)[吧。.!！]*$")
_SKIP_WORDS = {"跳过", "不填", "没有", "暂无", "无", "先跳过", "skip", "none", "n/a"}
_CANCEL_WORDS = {"取消", "不填了", "算了", "退出", "cancel", "stop"}
# Replies that are no value and must never reach paper: "not known" (skipped if optional,
# else asked again with where to find it) and "same as above" (copied from the field meant).
_UNKNOWN_WORDS = {
    "不知道",
    "不清楚",
    "不确定",
    "不晓得",
    "待定",
    "不详",
    "未知",
    "还不知道",
    "略",
    "tbd",
    "unknown",
    "don't know",
}
# Labels of a kind of value, whose person the label before them names.
_KIND_LABELS = {
    "id": ("身份证号码", "身份证号", "身份证", "证件号码", "证件号"),
    "mobile": ("手机号码", "手机号", "手机", "联系电话", "电话"),
    "email": ("电子邮箱", "邮箱", "e-mail", "email"),
    "name": ("姓名", "名字"),
}
_SAME_WORDS = {
    "同上",
    "一样",
    "同前",
    "同上面",
    "跟上面一样",
    "和上面一样",
    "与上面一样",
    "一样的",
    "same",
    "same as above",
}
_CONFIRM_WORDS = {
    "确认",
    "确定",
    "生成",
    "生成文件",
    "没问题",
    "对",
    "是",
    "好",
    "好的",
    "可以",
    "yes",
    "ok",
    "confirm",
}
_SUMMARY_SEP = {"zh": "：", "en": ": "}


def wants_document(text: str) -> bool:
    """The message asks to make a document (a verb of making), not about one."""
    return bool(_MAKE.search(text))


class FormFilling:
    """Runs form sessions for every conversation; holds no per-conversation data."""

    def __init__(self, catalog: Catalog, kb: KnowledgeBase, messages: Messages) -> None:
        self.catalog = catalog
        self.kb = kb
        self.msg = messages
        labels = sorted(
            (
                (alias, fid)
                for fid, f in catalog.fields.items()
                for alias in (f.label.zh, f.label.en, *f.aliases)
                if alias
            ),
            key=lambda pair: -len(pair[0]),
        )
        # A bare kind ("身份证：") belongs to the person named by the label before it
        # ("经办人：赵敏，身份证：…" -> 经办人身份证号).
        kinds = [(word, f"*{kind}") for kind, words in _KIND_LABELS.items() for word in words]
        labels = sorted([*labels, *kinds], key=lambda pair: -len(pair[0]))
        self._paste = re.compile(
            "(?P<label>" + "|".join(re.escape(a) for a, _ in labels) + r")\s*[:：]\s*", re.IGNORECASE
        )
        self._label_to_field: dict[str, str] = {}
        for alias, fid in labels:
            self._label_to_field.setdefault(alias.lower(), fid)

    # ------------------------------------------------------------------ helpers
    def _m(self, state: ConversationState, key: str, **values: object) -> str:
        return self.msg.get(f"fm.{key}", state.lang, **{k: str(v) for k, v in values.items()})

    def _button(self, state: ConversationState, key: str, payload: str) -> Button:
        return Button(self.msg.get(f"fm.buttons.{key}", state.lang), payload)

    def active(self, state: ConversationState) -> bool:
        return state.form is not None

    def _forms(self, session: FormSession) -> list[Form]:
        return [self.catalog.forms[f] for f in session.forms if f in self.catalog.forms]

    def _company(self, state: ConversationState) -> Company:
        if state.active_company is None:
            name = self._m(state, "default_company")
            state.companies.append(Company(name=name, placeholder=True))
            state.company = len(state.companies) - 1
        company = state.active_company
        assert company is not None
        return company

    def _title(self, state: ConversationState, form: Form) -> str:
        return form.title.get(state.lang)

    def region_of(self, state: ConversationState) -> str | None:
        return state.walkthrough or state.region

    # ------------------------------------------------------------------ choosing forms
    def menu(self, state: ConversationState, region: str | None = None) -> list[Reply]:
        """The forms of the region (or every region) as buttons."""
        region = region or self.region_of(state)
        forms = self.catalog.for_region(region)
        buttons = tuple(
            Button(self._label(state, f, show_region=region is None), f"{PREFIX}start:{f.id}") for f in forms
        )
        return [Reply(self._m(state, "menu"), buttons)]

    def _label(self, state: ConversationState, form: Form, *, show_region: bool) -> str:
        title = self._title(state, form)
        if not show_region:
            return title
        region = self.kb.regions[form.region]
        return f"{region.name_en if state.lang == 'en' else region.name}·{title}"

    def from_text(self, state: ConversationState, text: str, now: datetime) -> list[Reply] | None:
        """ "帮我生成授权委托书": start the forms the text names, or offer the menu."""
        found = self.catalog.forms_by_words(text)
        region = self.region_of(state)
        if region is not None:
            found = [f for f in found if f.region == region] or found
        if not found:
            return None
        regions = {f.region for f in found}
        if len(regions) > 1:  # e.g. 用户申请表 exists in both regions: let the user pick
            buttons = tuple(Button(self._label(state, f, show_region=True), f"{PREFIX}start:{f.id}") for f in found)
            return [Reply(self._m(state, "which_form"), buttons)]
        return self.start(state, [f.id for f in found], now)

    def for_step(self, state: ConversationState, region: str, step: str, answers: dict[str, str]) -> list[Form]:
        """The forms a walkthrough step needs on the path its answers describe."""
        values = {
            **self._from_answers(region, answers),
            **(state.active_company.profile if state.active_company else {}),
        }
        return [
            f for f in self.catalog.for_step(region, step) if applies(f.when, values) or not set(f.when) <= set(values)
        ]

    def _from_answers(self, region: str, answers: dict[str, str]) -> dict[str, str]:
        """Profile values the walkthrough's answers give (fields borrowing its choices)."""
        out: dict[str, str] = {}
        for fid, fdef in self.catalog.fields.items():
            src = fdef.options_from
            if src and src.procedure == region and src.choice in answers:
                out[fid] = answers[src.choice]
        return out

    # ------------------------------------------------------------------ the session
    def start(
        self, state: ConversationState, form_ids: list[str], now: datetime, step: str | None = None
    ) -> list[Reply]:
        forms = [self.catalog.forms[f] for f in form_ids if f in self.catalog.forms]
        if not forms:
            return self.menu(state)
        company = self._company(state)
        region = forms[0].region
        prog = company.progress.get(region)
        if prog is not None:
            for fid, value in self._from_answers(region, prog.answers).items():
                company.profile.setdefault(fid, value)
        name_field = self.catalog.fields.get("company_name")
        if name_field is not None and not company.placeholder and "company_name" not in company.profile:
            # The name given to the walkthrough is the 单位名称: not asked twice.
            named = check_field(name_field, company.name)
            if named.ok and named.value is not None:
                company.profile["company_name"] = named.value
        state.form = FormSession(forms=[f.id for f in forms], region=region, step=step, skipped=list(company.skipped))
        titles = "、".join(f"《{self._title(state, f)}》" for f in forms)
        todo = missing_fields(self.catalog, forms, company.profile)
        notes = [f"• {self._title(state, f)}：{f.note.get(state.lang)}" for f in forms if f.note]
        if todo:
            intro = self._m(state, "intro", titles=titles, company=company.name, count=len(todo))
        else:
            intro = self._m(state, "intro_known", titles=titles, company=company.name)
        text = intro + ("\n" + "\n".join(notes) if notes else "")
        return [Reply(text), *self._next(state)]

    def _next(self, state: ConversationState, said: list[str] | None = None) -> list[Reply]:
        """Ask the next missing field, re-ask one a rule rejects, or show the summary."""
        session, company = state.form, self._company(state)
        assert session is not None
        forms = self._forms(session)
        prefix = "\n".join(said or [])
        if not forms:  # a correction with no documents in view: saved, nothing to make
            state.form = None
            state.awaiting = None
            return [Reply("\n".join(p for p in (prefix, self._m(state, "saved_only")) if p))]
        problems = rule_errors(self.catalog, company.profile, state.lang)
        if problems:
            problem = problems[0]
            company.profile.pop(problem.field, None)
            prefix = "\n".join(p for p in (prefix, "⚠ " + problem.message) if p)
        todo = missing_fields(self.catalog, forms, company.profile, session.skipped)
        if todo:
            return [self._ask(state, todo[0], prefix)]
        session.stage = "confirm"
        session.asking = None
        state.awaiting = None
        return [self._summary(state, prefix)]

    def _ask(self, state: ConversationState, fdef: FieldDef, prefix: str = "") -> Reply:
        session = state.form
        assert session is not None
        session.stage = "filling"
        session.asking = fdef.id
        state.awaiting = Awaiting(kind="form_field", ref=fdef.id)
        required = fdef.id in {ff.id for f in self._forms(session) for ff in f.fields if ff.required}
        lines = [prefix] if prefix else []
        lines.append(self._m(state, "ask", label=fdef.label.get(state.lang)))
        if fdef.help:
            lines.append(fdef.help.get(state.lang))
        if fdef.example:
            lines.append(self._m(state, "example", example=fdef.example))
        if fdef.type == "choices":
            lines.append(self._m(state, "many"))
        buttons: list[Button] = []
        if fdef.type == "choice":
            buttons += [Button(o.label.get(state.lang), f"{PREFIX}pick:{fdef.id}:{o.value}") for o in fdef.options]
        elif fdef.type == "choices":
            lines.append("、".join(f"{i}. {o.label.get(state.lang)}" for i, o in enumerate(fdef.options, 1)))
        if not required:
            buttons.append(self._button(state, "skip", f"{PREFIX}skip"))
        buttons.append(self._button(state, "cancel", f"{PREFIX}cancel"))
        return Reply("\n".join(lines), tuple(buttons), numbered=fdef.type != "choices")

    def _summary(self, state: ConversationState, prefix: str = "") -> Reply:
        session, company = state.form, self._company(state)
        assert session is not None
        forms = self._forms(session)
        sep = _SUMMARY_SEP.get(state.lang, "：")
        lines = [prefix] if prefix else []
        titles = "、".join(f"《{self._title(state, f)}》" for f in forms)
        lines.append(self._m(state, "summary_head", titles=titles, company=company.name))
        fields = needed_fields(self.catalog, forms, company.profile)
        for group in self.catalog.groups:
            shown = [f for f in fields if f.group == group.id]
            if not shown:
                continue
            lines.append(f"【{group.title.get(state.lang)}】")
            for f in shown:
                value = display_value(f, company.profile.get(f.id, ""), state.lang) or self._m(state, "blank")
                lines.append(f"{f.label.get(state.lang)}{sep}{value}")
        lines.append(self._m(state, "summary_tail"))
        buttons = (
            self._button(state, "confirm", f"{PREFIX}confirm"),
            self._button(state, "edit", f"{PREFIX}edit"),
            self._button(state, "cancel", f"{PREFIX}cancel"),
        )
        return Reply("\n".join(lines), buttons)

    def _finish(self, state: ConversationState) -> list[Reply]:
        session, company = state.form, self._company(state)
        assert session is not None
        forms = self._forms(session)
        if required_missing(self.catalog, forms, company.profile):
            return self._next(state)
        values = tuple(sorted(company.profile.items()))
        replies = [Reply(self._m(state, "making", count=len(forms)))]
        for form in forms:
            caption = self._title(state, form)
            replies.append(Reply(caption, form=FormRequest(form.id, values, state.lang)))
        state.last_forms = list(session.forms)
        state.form = None
        state.awaiting = None
        tail = self._m(state, "done")
        replies.append(Reply(tail))
        return replies

    def resume_offer(self, state: ConversationState) -> Reply | None:
        """After a question answered in the middle of a form: back to it."""
        if state.form is None:
            return None
        return Reply(
            self._m(state, "resume"),
            (self._button(state, "continue", f"{PREFIX}resume"), self._button(state, "cancel", f"{PREFIX}cancel")),
        )

    def cancel(self, state: ConversationState) -> list[Reply]:
        state.form = None
        state.awaiting = None
        return [Reply(self._m(state, "cancelled"))]

    # ------------------------------------------------------------------ input
    def button(self, state: ConversationState, payload: str, now: datetime) -> list[Reply] | None:
        """Handle an ``fm:`` button; None when it is stale."""
        body = payload[len(PREFIX) :]
        if body.startswith("start:"):
            return self.start(state, [body[len("start:") :]], now)
        if body.startswith("step:"):
            _, region, step = body.split(":", 2) if body.count(":") >= 2 else ("", "", "")
            prog = state.active_company.progress.get(region) if state.active_company else None
            forms = self.for_step(state, region, step, prog.answers if prog else {})
            return self.start(state, [f.id for f in forms], now, step=step) if forms else None
        if body == "menu":
            return self.menu(state)
        if body == "resume" and state.form is not None:
            return self._next(state)
        session = state.form
        if session is None:
            return None
        if body == "cancel":
            return self.cancel(state)
        if body == "skip" and session.asking:
            return self._skip(state, session.asking)
        if body == "confirm" and session.stage == "confirm":
            return self._finish(state)
        if body == "edit":
            return [Reply(self._m(state, "how_to_edit", example=self._edit_example(state)))]
        if body.startswith("pick:"):
            _, fid, value = body.split(":", 2)
            fdef = self.catalog.fields.get(fid)
            if fdef is None or fdef.option(value) is None or fid != session.asking:
                return None
            return self._store(state, fdef, value)
        return None

    def _edit_example(self, state: ConversationState) -> str:
        return "改一下法定代表人" if state.lang != "en" else "change Legal representative"

    def text(self, state: ConversationState, text: str, now: datetime) -> list[Reply] | None:
        """A message while a session is open (or a correction after one): None if not ours."""
        text = text.strip()
        session = state.form
        low = text.lower()
        if session is not None and low in _CANCEL_WORDS:
            return self.cancel(state)
        pasted = self._pasted(text)
        if len(pasted) >= (1 if session is not None else 2):
            return self._apply_many(state, pasted, now)
        edit = self._edit(state, text, now)
        if edit is not None:
            return edit
        if session is None:
            return None
        if session.stage == "confirm":
            if low in _CONFIRM_WORDS:
                return self._finish(state)
            return None
        fdef = self.catalog.fields.get(session.asking or "")
        if fdef is None:
            return self._next(state)
        if is_question(text) and not (fdef.is_choice and check_field(fdef, text).ok):
            return None  # "统一社会信用代码在哪看？": answered as a question, then back here
        bare = low.strip(" 。.!！~～的啊呀吧哦")
        if low in _SKIP_WORDS or bare in _UNKNOWN_WORDS:
            required = fdef.id in {ff.id for f in self._forms(session) for ff in f.fields if ff.required}
            if required:
                key = "required" if low in _SKIP_WORDS else "not_known"
                return [self._ask(state, fdef, self._m(state, key, label=fdef.label.get(state.lang), said=text))]
            return self._skip(state, fdef.id)
        if bare in _SAME_WORDS:
            return self._same_as_before(state, fdef)
        return self._store(state, fdef, text)

    def _same_as_before(self, state: ConversationState, fdef: FieldDef) -> list[Reply]:
        """ "同上": the value of the nearest earlier field of the same kind (注册地址 after
        主要经营场所), said so; asked again when no such field has a value."""
        session, company = state.form, self._company(state)
        assert session is not None
        order = list(dict.fromkeys(ff.id for f in self._forms(session) for ff in f.fields))
        before = order[: order.index(fdef.id)] if fdef.id in order else order
        kind = fdef.id.rsplit("_", 1)[-1]
        for fid in [*reversed(before), *company.profile]:
            source = self.catalog.fields.get(fid)
            value = company.profile.get(fid, "")
            if source is None or fid == fdef.id or not value or fid.rsplit("_", 1)[-1] != kind:
                continue
            if source.type != fdef.type:
                continue
            check = check_field(fdef, value)
            if not check.ok or check.value is None:
                continue
            said = [self._m(state, "same_as", label=fdef.label.get(state.lang), source=source.label.get(state.lang))]
            said += self._set(state, fdef, check.value)
            return self._next(state, said)
        return [self._ask(state, fdef, self._m(state, "same_unknown", label=fdef.label.get(state.lang)))]

    def _skip(self, state: ConversationState, field_id: str) -> list[Reply]:
        """Leave an optional field blank, for this and later documents of the company."""
        session, company = state.form, self._company(state)
        assert session is not None
        for skipped in (session.skipped, company.skipped):
            if field_id not in skipped:
                skipped.append(field_id)
        return self._next(state)

    def _store(self, state: ConversationState, fdef: FieldDef, raw: str) -> list[Reply]:
        check = check_field(fdef, raw)
        if not check.ok:
            return [self._ask(state, fdef, "❌ " + explain(self.catalog, fdef, check, state.lang))]
        assert check.value is not None
        said = self._set(state, fdef, check.value)
        if check.warning:
            said.append("⚠ " + explain(self.catalog, fdef, check, state.lang))
        return self._next(state, said)

    def _set(self, state: ConversationState, fdef: FieldDef, value: str) -> list[str]:
        company = self._company(state)
        company.profile[fdef.id] = value
        for skipped in (state.form.skipped if state.form else [], company.skipped):
            if fdef.id in skipped:
                skipped.remove(fdef.id)
        said: list[str] = []
        if fdef.id == "company_name" and company.placeholder:
            taken = {c.name for c in state.companies if c is not company}
            if value[:60] not in taken:
                company.name = value[:60]
                company.placeholder = False
        shown = display_value(fdef, value, state.lang)
        said.append(self._m(state, "saved", label=fdef.label.get(state.lang), value=shown))
        return said

    def _pasted(self, text: str) -> list[tuple[str, str]]:
        """``label：value`` pairs anywhere in the text, in order; a bare kind ("身份证：") is
        the one of the person labelled last before it, and left out when there is none."""
        matches = list(self._paste.finditer(text))
        pairs: list[tuple[str, str]] = []
        person = ""
        for i, match in enumerate(matches):
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            value = text[match.end() : end].strip().rstrip("，,；;。").strip()
            fid = self._label_to_field[match.group("label").lower()]
            if fid.startswith("*"):
                fid = f"{person}_{fid[1:]}" if person else ""
                if fid not in self.catalog.fields:
                    continue
            base, _, kind = fid.rpartition("_")
            if base and kind in _KIND_LABELS:
                person = base
            pairs.append((fid, value))
        return pairs

    def _apply_many(self, state: ConversationState, pairs: list[tuple[str, str]], now: datetime) -> list[Reply]:
        if state.form is None:
            self._reopen(state, now)
        said: list[str] = []
        for fid, raw in pairs:
            fdef = self.catalog.fields[fid]
            check = check_field(fdef, raw)
            if not check.ok:
                said.append("❌ " + explain(self.catalog, fdef, check, state.lang))
                continue
            assert check.value is not None
            said += self._set(state, fdef, check.value)
            if check.warning:
                said.append("⚠ " + explain(self.catalog, fdef, check, state.lang))
        return self._next(state, said)

    def _edit(self, state: ConversationState, text: str, now: datetime) -> list[Reply] | None:
        """ "改一下法人姓名" asks the field again; "法人姓名改成张三" sets it at once."""
        company = state.active_company
        if company is None or (state.form is None and not company.profile):
            return None
        match = _SET.match(text)
        if match is not None:
            fdef = self.catalog.field_by_words(match.group("what"))
            if fdef is not None:
                if state.form is None:
                    self._reopen(state, now)
                return self._store(state, fdef, match.group("value"))
        match = _EDIT.match(text) or _WRONG.match(text)
        if match is None:
            return None
        fdef = self.catalog.field_by_words(match.group("what"))
        if fdef is None:
            if state.form is None:
                return None
            names = "、".join(
                f.label.get(state.lang) for f in needed_fields(self.catalog, self._forms(state.form), company.profile)
            )
            return [Reply(self._m(state, "edit_unknown", what=clean_text(match.group("what"))[:40], names=names))]
        if state.form is None:
            self._reopen(state, now)
        return [self._ask(state, fdef, self._m(state, "edit_now", label=fdef.label.get(state.lang)))]

    def _reopen(self, state: ConversationState, now: datetime) -> None:
        """A correction after the documents were made: a session for the same documents."""
        forms = state.last_forms or []
        region = self.catalog.forms[forms[0]].region if forms else (self.region_of(state) or "")
        state.form = FormSession(forms=forms, region=region)

    # ------------------------------------------------------------------ the profile
    def profile(self, state: ConversationState) -> list[Reply]:
        """Every value stored for the active company (the user's own data, unmasked)."""
        company = state.active_company
        if company is None or not company.profile:
            return [Reply(self._m(state, "profile_empty"), (self._button(state, "menu", f"{PREFIX}menu"),))]
        sep = _SUMMARY_SEP.get(state.lang, "：")
        lines = [self._m(state, "profile_head", company=company.name)]
        for group in self.catalog.groups:
            shown = [f for f in self.catalog.fields.values() if f.group == group.id and company.profile.get(f.id)]
            if shown:
                lines.append(f"【{group.title.get(state.lang)}】")
                lines += [
                    f"{f.label.get(state.lang)}{sep}{display_value(f, company.profile[f.id], state.lang)}"
                    for f in shown
                ]
        lines.append(self._m(state, "profile_tail", example=self._edit_example(state)))
        return [Reply("\n".join(lines), (self._button(state, "menu", f"{PREFIX}menu"),))]
