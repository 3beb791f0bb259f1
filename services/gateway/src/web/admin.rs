//! Administration: staff accounts and their roles (administrators only; everyone else sees
//! PERMISSION_DENIED). Every change is audited by the gateway's store.

use super::page::Console;
use crate::api::error::HttpError;
use crate::auth::accounts::{self, AccountChange, AccountInput};
use crate::store::Account;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use hcrm_kit::auth::Role;
use http::HeaderMap;
use maud::{Markup, html};
use serde::Deserialize;

fn role_name(c: &Console, role: Role) -> &'static str {
    match role {
        Role::Admin => c.tr("管理员", "administrator"),
        Role::Guide => c.tr("导医", "guide"),
        Role::Inspector => c.tr("质控（投诉、回访）", "inspector"),
        Role::OpinionAnalyst => c.tr("舆情分析", "opinion analyst"),
        Role::Clinician => c.tr("临床医护", "clinician"),
        Role::DepartmentHead => c.tr("科室主任", "department head"),
        Role::Auditor => c.tr("审计", "auditor"),
        Role::Integration => c.tr("系统集成", "integration"),
    }
}

fn denied(c: &Console) -> Response {
    c.error(HttpError::new(
        tonic::Code::PermissionDenied,
        c.tr("只有管理员可以管理账号。", "Only administrators manage accounts."),
    ))
}

fn role_boxes(c: &Console, checked: &[Role]) -> Markup {
    html! {
        fieldset {
            legend { (c.tr("角色", "Roles")) }
            @for role in Role::ALL {
                label.choice {
                    input type="checkbox" name="roles" value=(role.as_str()) checked[checked.contains(&role)];
                    " " (role_name(c, role))
                }
            }
        }
    }
}

async fn page(c: &Console, error: Option<&HttpError>, notice: Option<&str>) -> Response {
    if !c.is_admin() {
        return denied(c);
    }
    let list = match c.gw.store.list_accounts().await {
        Ok(list) => list,
        Err(err) => return c.error(err),
    };
    let body = html! {
        @if let Some(text) = notice { div.notice role="status" { (text) } }
        @if let Some(err) = error { (c.error_box(err)) }
        nav.card #settings {
            h2 { (c.tr("业务设置", "Settings of the work")) }
            ul {
                li { a href="/console/followups/templates" { (c.tr("随访模板与评分", "Follow-up templates and recovery scores")) } }
                li { a href="/console/surveys" { (c.tr("满意度问卷", "Questionnaires")) } }
                li { a href="/console/opinion/entities" { (c.tr("舆情监测对象", "Opinion watch list")) } }
                li { a href="/console/opinion/sources" { (c.tr("舆情来源", "Opinion sources")) } }
                li { a href="/console/opinion/rules" { (c.tr("预警规则", "Alert rules")) } }
            }
        }
        h2 { (c.tr("工作人员账号", "Staff accounts")) }
        table #accounts {
            thead { tr {
                th { (c.tr("用户名", "Username")) } th { (c.tr("姓名", "Name")) } th { (c.tr("角色", "Roles")) }
                th { (c.tr("科室", "Department")) } th { (c.tr("状态", "State")) } th {}
            } }
            tbody {
                @for a in &list { (account_row(c, a)) }
            }
        }
        h2 { (c.tr("新建账号", "New account")) }
        form.card #new-account method="post" action="/console/admin/accounts" {
            (c.csrf_field())
            label { (c.tr("用户名（小写字母、数字）", "Username (lowercase letters, digits)")) input name="username" required maxlength="64"; }
            label { (c.tr("姓名", "Name")) input name="displayName" required maxlength="100"; }
            (role_boxes(c, &[]))
            label { (c.tr("科室（临床医护、科室主任必填）", "Department (clinicians and department heads)")) input name="department" maxlength="64"; }
            label { (c.tr("初始密码（至少10位）", "Initial password (10 characters or more)")) input name="password" type="password" required autocomplete="new-password"; }
            button type="submit" { (c.tr("创建", "Create")) }
        }
    };
    let mut response = c.page(c.tr("系统管理", "Administration"), body);
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

fn account_row(c: &Console, a: &Account) -> Markup {
    html! {
        tr data-username=(a.username) {
            td { (a.username) }
            td { (a.display_name) }
            td { @for r in &a.roles { span.tag { (role_name(c, *r)) } } }
            td { (a.department.as_deref().unwrap_or("")) }
            td { @if a.disabled { span.tag.bad { (c.tr("已停用", "disabled")) } } @else { span.tag.good { (c.tr("启用", "active")) } } }
            td {
                details {
                    summary { (c.tr("修改", "Change")) }
                    form method="post" action={ "/console/admin/accounts/" (a.username) } {
                        (c.csrf_field())
                        input type="hidden" name="version" value=(a.version);
                        label { (c.tr("姓名", "Name")) input name="displayName" value=(a.display_name) required; }
                        (role_boxes(c, &a.roles))
                        label { (c.tr("科室", "Department")) input name="department" value=(a.department.as_deref().unwrap_or("")); }
                        label { input type="checkbox" name="disabled" value="true" checked[a.disabled]; " " (c.tr("停用", "Disabled")) }
                        button type="submit" { (c.tr("保存", "Save")) }
                    }
                    @if a.username == c.who.account.username {
                        p.small { a href="/console/account" { (c.tr("在“我的账号”中修改自己的密码", "Change your own password on your account page")) } }
                    } @else {
                        form method="post" action={ "/console/admin/accounts/" (a.username) "/password" } {
                            (c.csrf_field())
                            label { (c.tr("新密码", "New password")) input name="password" type="password" required autocomplete="new-password"; }
                            button.secondary type="submit" { (c.tr("重置密码", "Reset password")) }
                        }
                    }
                }
            }
        }
    }
}

/// What the last change was, for the notice after the redirect.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    created: String,
    #[serde(default)]
    reset: String,
}

pub async fn show(c: Console, axum::extract::Query(done): axum::extract::Query<Done>) -> Response {
    let notice = if !done.created.is_empty() {
        Some(format!("{} {}", c.tr("已创建账号", "Created account"), done.created))
    } else if !done.reset.is_empty() {
        Some(format!("{} {}", c.tr("已重置密码：", "Password reset for"), done.reset))
    } else {
        None
    };
    page(&c, None, notice.as_deref()).await
}

/// Post/redirect/get: a reload of the page after a change does not make it again.
fn done(key: &str, username: &str) -> Response {
    Redirect::to(&format!("/console/admin?{key}={}", super::page::url_encode(username))).into_response()
}

/// A form with repeated `roles` fields.
fn fields(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn all(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

fn one(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

pub async fn create(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let f = fields(&body);
    let input = AccountInput {
        username: one(&f, "username"),
        display_name: one(&f, "displayName"),
        roles: all(&f, "roles"),
        department: one(&f, "department"),
        password: one(&f, "password"),
    };
    let request_id = hcrm_kit::new_id();
    match accounts::create(&c.gw.store, &c.who.account.principal(), &request_id, input).await {
        Ok(a) => done("created", &a.username),
        Err(err) => page(&c, Some(&HttpError::from(err)), None).await,
    }
}

pub async fn update(c: Console, Path(username): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c.form::<serde::de::IgnoredAny>(&headers, &body) {
        return c.error(err);
    }
    let f = fields(&body);
    let change = AccountChange {
        display_name: one(&f, "displayName"),
        roles: all(&f, "roles"),
        department: one(&f, "department"),
        disabled: one(&f, "disabled") == "true",
        version: one(&f, "version").parse().unwrap_or(0),
    };
    let request_id = hcrm_kit::new_id();
    match accounts::update(&c.gw.store, &c.who.account.principal(), &request_id, &username, change).await {
        Ok(_) => Redirect::to("/console/admin").into_response(),
        Err(err) => page(&c, Some(&HttpError::from(err)), None).await,
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

pub async fn password(c: Console, Path(username): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let form: PasswordForm = match c.form(&headers, &body) {
        Ok(f) => f,
        Err(err) => return c.error(err),
    };
    let request_id = hcrm_kit::new_id();
    match accounts::set_password(
        &c.gw.store,
        &c.who.account.principal(),
        &request_id,
        &username,
        None,
        &form.password,
    )
    .await
    {
        Ok(()) if username == c.who.account.username => {
            // Their own sessions, this one included, have just ended.
            Redirect::to("/login").into_response()
        }
        Ok(()) => done("reset", &username),
        Err(err) => page(&c, Some(&HttpError::from(err)), None).await,
    }
}
