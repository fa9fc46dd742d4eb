"""The API's errors: what a handler raises, and how a database refusal is told to the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm.http.keys import BODY
from leadline_shared.http import problem


class BadRequest(Exception):
    """Input the API rejects with 422 and a detail naming the parameter."""


class Conflict(Exception):
    """A 409: the request collides with an existing record (named in ``extra``)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.extra = extra


@dataclass(frozen=True)
class ForeignKey:
    """What a foreign key means to an API caller: the field holding the reference, the kind of record it points
    at, and (for a refused delete) the records that still point at it."""

    field: str
    target: str
    referrers: str


# Every foreign key of the schema (a test checks none is missing), so that a violation is reported as the field
# the caller sent and what it should point at, never as a constraint name the caller cannot know.
FOREIGN_KEYS: dict[str, ForeignKey] = {
    "api_tokens_user_id_fkey": ForeignKey("user_id", "user", "API tokens"),
    "stage_transitions_person_id_fkey": ForeignKey("person_id", "person", "stage changes"),
    "ads_affiliate_id_fkey": ForeignKey("affiliate_id", "affiliate", "ads"),
    "ads_campaign_id_fkey": ForeignKey("campaign_id", "campaign", "ads"),
    "email_sends_campaign_id_fkey": ForeignKey("campaign_id", "campaign", "email sends"),
    "email_sends_person_id_fkey": ForeignKey("person_id", "person", "email sends"),
    "purchases_person_id_fkey": ForeignKey("person_id", "person", "purchases"),
    "purchases_product_id_fkey": ForeignKey("product_id", "product", "purchases"),
    "purchases_sales_rep_fkey": ForeignKey("sales_rep", "user", "purchases"),
    "feedback_person_id_fkey": ForeignKey("person_id", "person", "feedback entries"),
    "activities_person_id_fkey": ForeignKey("person_id", "person", "activities"),
    "activities_rep_id_fkey": ForeignKey("rep_id", "user", "activities"),
    "sessions_user_id_fkey": ForeignKey("user_id", "user", "sessions"),
    "password_links_user_id_fkey": ForeignKey("user_id", "user", "password links"),
    "password_links_created_by_fkey": ForeignKey("created_by", "user", "password links they made"),
    "persons_owner_id_fkey": ForeignKey("owner_id", "user", "persons they own"),
    "persons_company_id_fkey": ForeignKey("company_id", "company", "persons"),
    "companies_owner_id_fkey": ForeignKey("owner_id", "user", "companies they own"),
    "pipeline_stages_pipeline_id_fkey": ForeignKey("pipeline_id", "pipeline", "stages"),
    "deals_person_id_fkey": ForeignKey("person_id", "person", "deals"),
    "deals_company_id_fkey": ForeignKey("company_id", "company", "deals"),
    "deals_owner_id_fkey": ForeignKey("owner_id", "user", "deals they own"),
    "deals_pipeline_id_stage_id_fkey": ForeignKey("stage_id", "stage of this pipeline", "deals"),
    "deal_stage_history_deal_id_fkey": ForeignKey("deal_id", "deal", "stage changes"),
    "deal_stage_history_from_stage_id_fkey": ForeignKey("from_stage_id", "stage", "stage changes"),
    "deal_stage_history_to_stage_id_fkey": ForeignKey("to_stage_id", "stage", "stage changes"),
    "tasks_owner_id_fkey": ForeignKey("owner_id", "user", "tasks"),
    "tasks_person_id_fkey": ForeignKey("person_id", "person", "tasks"),
    "tasks_company_id_fkey": ForeignKey("company_id", "company", "tasks"),
    "tasks_deal_id_fkey": ForeignKey("deal_id", "deal", "tasks"),
    "team_members_team_id_fkey": ForeignKey("team_id", "team", "members"),
    "team_members_user_id_fkey": ForeignKey("user_id", "user", "team memberships"),
    "assignment_rules_team_id_fkey": ForeignKey("team_id", "team", "assignment rules"),
    "assignment_rules_user_id_fkey": ForeignKey("user_id", "user", "assignment rules"),
    "import_jobs_created_by_fkey": ForeignKey("created_by", "user", "imports"),
    "import_rejects_job_id_fkey": ForeignKey("job_id", "import", "rejected rows"),
    "sales_targets_user_id_fkey": ForeignKey("user_id", "user", "sales targets"),
    "purchases_deal_id_fkey": ForeignKey("deal_id", "deal", "purchases"),
    "service_contracts_person_id_fkey": ForeignKey("person_id", "person", "service contracts"),
    "service_contracts_product_id_fkey": ForeignKey("product_id", "product", "service contracts"),
    "service_contracts_purchase_id_fkey": ForeignKey("purchase_id", "purchase", "service contracts"),
    "cases_person_id_fkey": ForeignKey("person_id", "person", "cases"),
    "cases_purchase_id_fkey": ForeignKey("purchase_id", "purchase", "cases"),
    "cases_contract_id_fkey": ForeignKey("contract_id", "service contract", "cases"),
    "cases_assignee_id_fkey": ForeignKey("assignee_id", "user", "cases assigned to them"),
    "case_events_case_id_fkey": ForeignKey("case_id", "case", "case events"),
    "case_comments_case_id_fkey": ForeignKey("case_id", "case", "comments"),
    "case_comments_author_id_fkey": ForeignKey("author_id", "user", "case comments"),
    "kb_articles_product_id_fkey": ForeignKey("product_id", "product", "knowledge base articles"),
    "webhook_deliveries_subscription_id_fkey": ForeignKey(
        "subscription_id", "webhook subscription", "deliveries"
    ),
    # automation (issue 16)
    "workflow_rules_created_by_fkey": ForeignKey("created_by", "user", "workflow rules they made"),
    "rule_runs_rule_id_fkey": ForeignKey("rule_id", "workflow rule", "workflow runs"),
    "list_members_list_id_fkey": ForeignKey("list_id", "list", "list members"),
    "list_members_person_id_fkey": ForeignKey("person_id", "person", "list memberships"),
    "notifications_user_id_fkey": ForeignKey("user_id", "user", "notices"),
    "case_breaches_case_id_fkey": ForeignKey("case_id", "case", "service level breaches"),
}


def foreign_key_problem(request: web.Request, exc: asyncpg.ForeignKeyViolationError) -> web.Response:
    """The problem document of a foreign-key violation: 409 when a delete would leave references behind, else a
    422 naming the field and the record it should point at (``campaign_id: no campaign with id …``)."""
    fk = FOREIGN_KEYS.get(exc.constraint_name or "")
    if fk is None:
        return problem(422, "Unprocessable request", "refers to a record that does not exist")
    if request.method == "DELETE":
        return problem(409, "Conflict", f"{fk.referrers} still refer to this {fk.target}")
    value = request.get(BODY, {}).get(fk.field)
    detail = f"no {fk.target} with id {value}" if value is not None else f"no such {fk.target}"
    return problem(422, "Unprocessable request", f"{fk.field}: {detail}", field=fk.field)
