//! The inbox: cases by state, SLA state, kind, department and owner, open ones unless asked
//! otherwise, newest first, a page at a time.

use super::*;
use axum::extract::RawQuery;
use axum::response::{IntoResponse, Redirect, Response};
use hcrm_proto::feedback::{Case, ListCasesRequest};

const PAGE_SIZE: i32 = 50;

/// The inbox's filters as they came in the query (kept as typed, to refill the form).
#[derive(Debug, Default, Clone)]
struct Filters {
    state: String,
    sla: String,
    kind: String,
    department: String,
    mine: bool,
    ended: bool,
    page_token: String,
}

impl Filters {
    fn of(query: &[(String, String)]) -> Filters {
        Filters {
            state: one(query, "state").trim().to_string(),
            sla: one(query, "sla").trim().to_string(),
            kind: one(query, "kind").trim().to_string(),
            department: one(query, "department").trim().to_string(),
            mine: one(query, "mine") == "1",
            ended: one(query, "ended") == "1",
            page_token: one(query, "page_token").to_string(),
        }
    }

    /// The query string of these filters, without the page token.
    fn query(&self) -> String {
        let mut parts: Vec<(&str, &str)> = Vec::new();
        for (key, value) in [
            ("state", &self.state),
            ("sla", &self.sla),
            ("kind", &self.kind),
            ("department", &self.department),
        ] {
            if !value.is_empty() {
                parts.push((key, value));
            }
        }
        if self.mine {
            parts.push(("mine", "1"));
        }
        if self.ended {
            parts.push(("ended", "1"));
        }
        serde_urlencoded::to_string(&parts).unwrap_or_default()
    }

    /// The request these filters ask for; a wrong value names its parameter.
    fn request(&self, c: &Console) -> Result<ListCasesRequest, HttpError> {
        let state = parse_slug(STATES, "state", &self.state)?;
        let sla = parse_slug(SLAS, "sla", &self.sla)?;
        let kind = parse_slug(KINDS, "kind", &self.kind)?;
        // An ended state or a finished SLA state asks for ended cases by itself.
        let finished = matches!(sla, Some(SlaState::Met | SlaState::Missed));
        Ok(ListCasesRequest {
            states: state.map(|s| vec![s as i32]).unwrap_or_default(),
            department: self.department.clone(),
            owner: if self.mine {
                c.who.account.username.clone()
            } else {
                String::new()
            },
            patient: String::new(),
            kind: kind.map(|k| k as i32).unwrap_or_default(),
            sla_state: sla.map(|s| s as i32).unwrap_or_default(),
            open_only: !self.ended && state.is_none() && !finished,
            page_size: PAGE_SIZE,
            page_token: self.page_token.clone(),
        })
    }
}

pub async fn show(c: Console, RawQuery(query): RawQuery) -> Response {
    let query = pairs(query.unwrap_or_default().as_bytes());
    // The confirmation number a complainant quotes opens the case directly.
    let number = one(&query, "number").trim();
    if !number.is_empty() {
        return Redirect::to(&format!("/console/cases/{}", url_path(number))).into_response();
    }
    let filters = Filters::of(&query);
    let title = c.tr("投诉与建议", "Cases");
    let request = match filters.request(&c) {
        Ok(r) => r,
        Err(err) => {
            let body = html! { (filter_form(&c, &filters)) (c.error_box(&err)) };
            return with_status(c.page(title, body), Some(&err));
        }
    };
    let mut cases = client(&c);
    let (listed, tax) = tokio::join!(cases.list_cases(request), taxonomy(&c));
    let tax = tax.unwrap_or_default();
    let (cases, next) = match listed {
        Ok(r) => {
            let r = r.into_inner();
            (r.cases, r.next_page_token)
        }
        Err(status) => {
            let err = HttpError::from(status);
            let body = html! { (filter_form(&c, &filters)) (c.error_box(&err)) };
            return with_status(c.page(title, body), Some(&err));
        }
    };
    let body = html! {
        (filter_form(&c, &filters))
        @if cases.is_empty() {
            p #no-cases { (c.tr("没有符合条件的案件。", "No case matches.")) }
        } @else {
            (case_table(&c, &tax, &cases))
        }
        @if !next.is_empty() {
            @let more = filters.query();
            p { a #next-page rel="next" href={ "/console/cases?" (more) (if more.is_empty() { "" } else { "&" }) "page_token=" (super::super::page::url_encode(&next)) } {
                (c.tr("下一页 →", "Next page →"))
            } }
        }
    };
    c.page(title, body)
}

/// A confirmation number or id as a path segment: only what such a key contains.
fn url_path(key: &str) -> String {
    key.chars()
        .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
        .collect()
}

fn filter_form(c: &Console, f: &Filters) -> Markup {
    html! {
        div.grid {
            form.inline #case-filters method="get" action="/console/cases" role="search" {
                label { (c.tr("状态", "State")) (select(c, "state", STATES, &f.state, Some(c.tr("全部未结", "all open")))) }
                label { (c.tr("时限", "Deadline")) (select(c, "sla", SLAS, &f.sla, Some(c.tr("全部", "any")))) }
                label { (c.tr("类型", "Kind")) (select(c, "kind", KINDS, &f.kind, Some(c.tr("全部", "any")))) }
                label { (c.tr("科室代码", "Department code")) input name="department" value=(f.department) maxlength="40" size="12"; }
                label { input type="checkbox" name="mine" value="1" checked[f.mine]; " " (c.tr("只看我负责的", "Mine only")) }
                label { input type="checkbox" name="ended" value="1" checked[f.ended]; " " (c.tr("包括已结束的", "Include ended")) }
                button type="submit" { (c.tr("筛选", "Filter")) }
            }
        }
        div.grid {
            form.inline #open-by-number method="get" action="/console/cases" {
                label { (c.tr("受理编号", "Confirmation number"))
                    input name="number" placeholder="FK7Q-2M9D" maxlength="64" size="12";
                }
                button.secondary type="submit" { (c.tr("打开", "Open")) }
            }
            p { a #new-case href="/console/cases/new" { (c.tr("登记新案件", "Take a new case")) } }
        }
    }
}

fn case_table(c: &Console, tax: &[Category], cases: &[Case]) -> Markup {
    html! {
        table #cases {
            thead { tr {
                th { (c.tr("编号", "Number")) }
                th { (c.tr("类型", "Kind")) }
                th { (c.tr("标题", "Title")) }
                th { (c.tr("科室", "Department")) }
                th { (c.tr("类别", "Category")) }
                th { (c.tr("严重程度", "Severity")) }
                th { (c.tr("状态", "State")) }
                th { (c.tr("负责人", "Owner")) }
                th { (c.tr("响应时限", "Respond by")) }
                th { (c.tr("办结时限", "Resolve by")) }
                th { (c.tr("时限状态", "Deadline")) }
            } }
            tbody {
                @for k in cases {
                    tr data-case=(id_of(&k.name)) data-number=(k.number) data-state=(slug_of(STATES, k.state)) data-sla=(slug_of(SLAS, k.sla_state)) {
                        td { a href=(href(&k.name)) { code { (k.number) } } }
                        td { (name_of(c, KINDS, k.kind)) }
                        td { a href=(href(&k.name)) { (k.title) } }
                        td { (k.department) }
                        td { (category_name(c, tax, &k.category, &k.subcategory)) }
                        td { (name_of(c, SEVERITIES, k.severity)) }
                        td { span.tag { (name_of(c, STATES, k.state)) } }
                        td { (k.owner) }
                        td { (c.ts(&k.response_due_time)) }
                        td { (c.ts(&k.resolution_due_time)) }
                        td { (sla_tag(c, k.sla_state)) }
                    }
                }
            }
        }
    }
}
