"""Form filling through the pure dialogue core: asking, validating, pasting, correcting."""

from __future__ import annotations

from bot.core.events import ButtonPress, Command
from tests.auxil.chat import T0, Walk


def requests(walk):
    return [r.form for r in walk.replies if r.form is not None]


def fill(walk, *answers):
    for answer in answers:
        walk.say(answer)


def test_a_named_document_is_filled_field_by_field_and_requested(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    text = walk.say("帮我生成授权委托书")
    assert "《授权委托书》" in text and "请输入单位名称" in text
    assert "无固定格式" in text  # the form's note from the manual
    text = walk.say("陕西丝路优选跨境电子商务有限公司")
    assert "✅ 单位名称：陕西丝路优选跨境电子商务有限公司" in text
    # The placeholder company takes the name.
    assert walk.state.active_company.name == "陕西丝路优选跨境电子商务有限公司"
    text = walk.say("91110000600037341X")
    assert "校验位不对" in text and "91110000600037341L" in text and "请输入统一社会信用代码" in text
    fill(walk, "91110000600037341L", "张三")
    assert "请输入制卡机构" in walk.replies[-1].text
    assert "建行宝鸡分行营业部" in walk.buttons()
    walk.press("建行宝鸡分行营业部")
    fill(walk, "李四", "11010519491231002X", "13800138000")
    assert "签署日期" in walk.replies[-1].text and "跳过" in walk.buttons()
    text = walk.press("跳过")
    assert "请核对《授权委托书》" in text and "经办人身份证号：11010519491231002X" in text
    assert walk.buttons() == ["生成文件", "修改", "取消填表"]
    walk.press("生成文件")
    [request] = requests(walk)
    values = dict(request.values)
    assert request.form_id == "sx_power_of_attorney"
    assert values["card_issuer"] == "baoji" and values["agent_name"] == "李四"
    assert walk.state.form is None and walk.state.last_forms == ["sx_power_of_attorney"]


def test_several_fields_pasted_at_once(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    text = walk.say(
        "单位名称：陕西丝路优选跨境电子商务有限公司，统一社会信用代码：91110000600037341L，法人姓名：张三；"
        "经办人：李四 经办人手机：1380013800"
    )
    assert "✅ 统一社会信用代码：91110000600037341L" in text and "✅ 法定代表人：张三" in text
    assert "❌ 手机号应为以 1 开头的 11 位数字，您输入的是 10 位" in text
    assert walk.state.active_company.profile["agent_name"] == "李四"
    assert "agent_mobile" not in walk.state.active_company.profile
    assert "请输入制卡机构" in walk.replies[-1].text  # fields come in the catalog's order


def test_corrections_at_any_time(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    fill(walk, "陕西丝路优选跨境电子商务有限公司", "91110000600037341L", "张三")
    text = walk.say("改一下法人姓名")
    assert "修改“法定代表人”" in text and "请输入法定代表人" in text
    walk.say("王大明")
    assert walk.state.active_company.profile["legal_rep_name"] == "王大明"
    assert "请输入制卡机构" in walk.replies[-1].text  # back to where it was
    text = walk.say("单位名称改成陕西丝路严选跨境电子商务有限公司")
    assert "✅ 单位名称：陕西丝路严选跨境电子商务有限公司" in text
    text = walk.say("统一社会信用代码填错了")
    assert "请输入统一社会信用代码" in text


def test_a_correction_after_the_documents_reopens_them(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成本地备案工单")
    walk.say("珠海丝路跨境电子商务有限公司")
    walk.press("生成文件")
    assert [r.form_id for r in requests(walk)] == ["zh_ticket"]
    text = walk.say("企业名称改成珠海丝路优选跨境电子商务有限公司")
    assert "请核对《本地备案工单内容》" in text and "珠海丝路优选跨境电子商务有限公司" in text
    walk.press("生成文件")
    assert dict(requests(walk)[0].values)["company_name"] == "珠海丝路优选跨境电子商务有限公司"


def test_required_fields_cannot_be_skipped_and_cancel_keeps_the_data(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    text = walk.say("跳过")
    assert "“单位名称”是必填项" in text
    walk.say("陕西丝路优选跨境电子商务有限公司")
    text = walk.say("取消")
    assert "已退出填表" in text and walk.state.form is None
    text = walk.say("帮我生成电子签章授权委托书")
    assert "单位名称" not in text.split("请输入")[-1]  # already known: not asked again
    assert walk.state.active_company.profile["company_name"] == "陕西丝路优选跨境电子商务有限公司"


def test_the_operator_cannot_be_the_card_holder(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成制发卡申请书")
    walk.say(
        "单位名称：陕西丝路优选跨境电子商务有限公司，统一社会信用代码：91110000600037341L，"
        "主要经营场所：陕西省西安市高新区锦业路1号，单位联系电话：029-81234567，"
        "法定代表人：张三，法定代表人身份证号：11010519491231002X，法定代表人手机：13800138000"
    )
    walk.press("线下建行代理点")
    walk.press("法定代表人本人")
    walk.press("1 张")
    walk.say("王五")
    text = walk.say("11010519491231002X")
    assert "法人卡和操作员卡不能是同一个人" in text
    assert "请输入操作员卡持卡人1 身份证号" in walk.replies[-1].text
    assert "operator1_id" not in walk.state.active_company.profile
    walk.say("110101199003074477")
    assert "请输入操作员卡持卡人1 手机" in walk.replies[-1].text


def test_a_question_in_the_middle_is_answered_then_the_form_resumes(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    walk.say("陕西丝路优选跨境电子商务有限公司")
    text = walk.say("宝鸡哪里可以办卡？")
    assert "红旗路36号" in text
    assert "继续填表" in walk.buttons()
    text = walk.press("继续填表")
    assert "请输入统一社会信用代码" in text


def test_a_bare_request_offers_the_menu_of_the_region(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我们在珠海")
    walk.replies = dialogue.handle(walk.state, Command("forms", at=T0)).replies
    labels = walk.buttons()
    assert "跨境电商统一版企业接入申请表" in labels and "电子口岸制发卡业务申请书" not in labels
    out = dialogue.handle(walk.state, ButtonPress("fm:start:zh_entrustment", at=T0))
    assert "《委托书》" in out.replies[0].text and "被委托人即接入申请表中的联系人" in out.replies[0].text


def test_a_document_both_regions_have_asks_which(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成电子口岸数据交换平台用户申请表")
    assert walk.buttons() == ["陕西·电子口岸数据交换平台用户申请表", "珠海·电子口岸数据交换平台用户申请表"]


def test_a_walkthrough_step_offers_its_documents_prefilled_from_the_answers(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("我要办理跨境电商入网")
    walk.press("陕西")
    walk.press("无卡")
    walk.press("完成，下一步")
    walk.press("完成，下一步")
    walk.press("线下建行代理点")
    assert "📝 生成本步材料" in walk.buttons()
    text = walk.press("📝 生成本步材料")
    assert "《电子口岸制发卡业务申请书》、《授权委托书》、《复印件签注说明》" in text
    assert walk.state.active_company.profile["card_channel"] == "offline"  # from the walkthrough
    assert "办卡方式" not in walk.replies[-1].text


def test_english(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.state.lang = "en"
    out = dialogue.handle(walk.state, ButtonPress("fm:start:zh_ticket", at=T0))
    assert "Please enter Company name" in out.replies[-1].text


def test_stale_form_buttons_are_answered(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    out = dialogue.handle(walk.state, ButtonPress("fm:confirm", at=T0))
    assert "按钮已过期" in out.replies[0].text or out.replies[0].text
    out = dialogue.handle(walk.state, ButtonPress("fm:pick:card_issuer:nowhere", at=T0))
    assert out.replies and out.state.form is None


def test_history_never_holds_id_or_phone_numbers(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    walk.say("经办人身份证号：11010519491231002X，经办人手机：13800138000")
    history = "\n".join(t.text for t in walk.state.history)
    assert "11010519491231002X" not in history and "13800138000" not in history
    assert "110***********002X" in history


def test_hostile_answers_are_refused_or_kept_as_text(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成本地备案工单")
    text = walk.say("名" * 10_000)
    assert "太长了（10000 个字），最多 200 个字" in text and "请输入单位名称" in text
    hostile = "{{7*7}}{% for x in y %}<w:p>&../../x"
    walk.say(hostile)
    assert walk.state.active_company.profile["company_name"] == hostile
    walk.press("生成文件")
    assert dict(requests(walk)[0].values)["company_name"] == hostile
    for junk in ("", "\x00\x1b[31m", "😀" * 50, "/" * 3000):
        out = dialogue.handle(walk.state, ButtonPress("fm:" + junk, at=T0))
        assert out.replies


def test_ids_of_older_people_are_accepted_in_chat(dialogue, lexical):
    # A 1980 number of 宝鸡渭滨区 and a 1975 one of 西安雁塔区: districts newer than the births.
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    fill(walk, "陕西丝路优选跨境电子商务有限公司", "91110000600037341L", "张三")
    walk.press("建行宝鸡分行营业部")
    walk.say("李四")
    text = walk.say("610113197506202025")
    assert "出生日期" not in text and "请输入经办人手机" in walk.replies[-1].text
    assert walk.state.active_company.profile["agent_id"] == "610113197506202025"
    walk.say("改一下经办人身份证号")
    text = walk.say("610302198003150012")
    assert "出生日期" not in text
    assert walk.state.active_company.profile["agent_id"] == "610302198003150012"


def test_a_multi_select_leaves_typed_numbers_to_its_options(dialogue, lexical):
    """Its text numbers the options; its buttons (跳过, 取消填表) carry no numbers, so a
    typed "1" picks option 1 instead of pressing the first button."""
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成跨境电商统一版企业接入申请表")
    fdef = dialogue.forms.catalog.fields["enterprise_roles"]
    reply = dialogue.forms._ask(walk.state, fdef)
    assert "1. " in reply.text and not reply.numbered
    assert "取消填表" in [b.label for b in reply.buttons]
    text = walk.say("1、2")
    labels = [o.label.get("zh") for o in fdef.options[:2]]
    assert all(label in text for label in labels), text
    assert walk.state.form is not None, "the form is still open: 1 cancelled nothing"


def test_same_as_above_copies_the_field_it_means_and_not_known_is_never_a_value(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成跨境电商统一版企业接入申请表")
    company = walk.state.active_company
    fields = dialogue.forms.catalog.fields
    # 同上 with nothing of its kind before it: asked which.
    text = dialogue.forms._same_as_before(walk.state, fields["registered_address"])[0].text
    assert "“同上”指的是哪一项" in text
    company.profile["business_address"] = "陕西省西安市雁塔区科技路1号"
    replies = dialogue.forms._same_as_before(walk.state, fields["registered_address"])
    assert company.profile["registered_address"] == "陕西省西安市雁塔区科技路1号"
    assert "按「主要经营场所」填写" in replies[0].text
    # 不知道 for a required field: asked again, nothing stored.
    walk.state.form.asking = "legal_rep_name"
    text = walk.say("不知道")
    assert "不能写“不知道”" in text and "legal_rep_name" not in company.profile


def test_pasted_details_with_loose_labels_go_to_the_person_labelled_before_them(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("帮我生成授权委托书")
    walk.say("经办人：赵敏，身份证：11010519491231002X，手机：13800138000")
    profile = walk.state.active_company.profile
    assert profile["agent_name"] == "赵敏"
    assert profile["agent_id"] == "11010519491231002X"
    assert profile["agent_mobile"] == "13800138000"
    assert "company_name" not in profile  # nothing forced into the field asked


def test_the_company_named_in_the_walkthrough_is_not_asked_again(dialogue, lexical):
    walk = Walk(dialogue, lexical)
    walk.say("带我办陕西入网")
    walk.say("西安丝路云仓物流有限公司")
    text = walk.say("帮我生成授权委托书")
    assert "请输入单位名称" not in text
    assert walk.state.active_company.profile["company_name"] == "西安丝路云仓物流有限公司"
