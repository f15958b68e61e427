"""Personal data masking."""

from __future__ import annotations

from forms.catalog import default_catalog
from forms.masking import mask_id, mask_phone, mask_text, masked_profile


def test_values():
    assert mask_id("11010519491231002X") == "110***********002X"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("029-87606648") == "029-******48"


def test_text_masks_ids_and_mobiles_only():
    text = "法人身份证 11010519491231002X，手机 138-0013-8000，信用代码 91110000600037341L，热线 029-95198"
    masked = mask_text(text)
    assert "11010519491231002X" not in masked and "110***********002X" in masked
    assert "138****8000" in masked
    assert "91110000600037341L" in masked  # a company code is not personal data
    assert "029-95198" in masked


def test_profile_masks_personal_fields():
    masked = masked_profile(default_catalog(), {"legal_rep_id": "11010519491231002X", "legal_rep_name": "张三"})
    assert masked == {"legal_rep_id": "110***********002X", "legal_rep_name": "张三"}
