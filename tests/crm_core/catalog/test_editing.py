"""Settings forms to API bodies and the API's schema errors to sentences (catalog/editing.py): what a marketer
types is read as the API would take it, and a refusal says what to type instead, never a regular expression."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from leadline_crm.catalog.editing import Input, Invalid, body_of, check
from leadline_crm.catalog.pages import SECTIONS

FORMS = next(s for s in SECTIONS if s.slug == "forms")
RULES = next(s for s in SECTIONS if s.slug == "score-rules")
CAMPAIGNS = next(s for s in SECTIONS if s.slug == "campaigns")


def test_lines_and_commas_become_lists_and_empty_inputs_are_left_to_the_defaults() -> None:
    form = MultiDict(
        key="k", name="", fields="email\r\nfirst_name, company\n\n", required="", thank_you_url="/t"
    )
    body = body_of(FORMS.resource, FORMS.inputs, form, creating=True)
    # an unticked support box: not a support form
    assert body == {"key": "k", "fields": ["email", "first_name", "company"], "required": [],
                    "allowed_origins": [], "thank_you_url": "/t",
                    "support": False}  # fmt: skip
    check(FORMS.resource.body_schema(creating=True), body)


def test_changing_a_record_clears_what_was_emptied_and_never_sends_its_key() -> None:
    form = MultiDict(
        key="other", name="Spring", channel="email", landing_url="", starts_on="", ends_on="2026-04-01"
    )
    body = body_of(CAMPAIGNS.resource, CAMPAIGNS.inputs, form, creating=False)
    assert body == {"name": "Spring", "channel": "email", "landing_url": None, "starts_on": None,
                    "ends_on": "2026-04-01"}  # fmt: skip
    forms_body = body_of(FORMS.resource, FORMS.inputs, MultiDict(key="x", fields="email"), creating=False)
    assert "key" not in forms_body


def test_numbers_checkboxes_and_json_are_typed() -> None:
    body = body_of(
        RULES.resource, RULES.inputs, MultiDict(name="n", event_type="page_view", points="-2.5"), True
    )
    assert body["points"] == -2.5
    assert body["active"] is False
    with pytest.raises(Invalid) as bad:
        body_of(RULES.resource, RULES.inputs, MultiDict(name="n", event_type="page_view", points="ten"), True)
    assert bad.value.problems == {"points": "enter a number"}
    creative = Input("creative", "Creative", "json")
    ads = next(s for s in SECTIONS if s.slug == "ads").resource
    with pytest.raises(Invalid, match="JSON object"):
        body_of(ads, [creative], MultiDict(creative="{size: 1}"), True)


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({"key": "a b", "fields": ["email"], "thank_you_url": "/t"},
         {"key": "use letters, digits, '.', '_' or '-', starting with a letter or digit (at most 100)"}),
        ({"key": "k", "fields": [], "thank_you_url": "ftp://x"},
         {"fields": "needs at least 1 (one per line)",
          "thank_you_url": "enter a web address starting with http:// or https://, or a path starting with /"}),
        ({"key": "k", "fields": ["email"], "thank_you_url": "/t", "allowed_origins": ["https://a.example", "b"]},
         {"allowed_origins": "line 2: enter a web address starting with http:// or https://"}),
        ({"fields": ["email"]}, {"key": "is required", "thank_you_url": "is required"}),
    ],
)  # fmt: skip
def test_schema_errors_read_as_sentences(body: dict[str, object], problems: dict[str, str]) -> None:
    with pytest.raises(Invalid) as refused:
        check(FORMS.resource.body_schema(creating=True), body)
    assert refused.value.problems == problems
