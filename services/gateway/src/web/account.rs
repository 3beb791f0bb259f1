//! The member's own account: who they are, their roles, and changing their password (the
//! current one is asked for; every session of the account ends, this one too).

use super::page::Console;
use crate::api::error::HttpError;
use crate::auth::accounts;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use http::HeaderMap;
use maud::html;
use serde::Deserialize;

fn page(c: &Console, error: Option<&HttpError>) -> Response {
    let a = &c.who.account;
    let body = html! {
        @if let Some(err) = error { (c.error_box(err)) }
        div.card {
            dl.fields {
                dt { (c.tr("用户名", "Username")) } dd { (a.username) }
                dt { (c.tr("姓名", "Name")) } dd { (a.display_name) }
                dt { (c.tr("角色", "Roles")) } dd { (a.principal().roles_text()) }
                dt { (c.tr("科室", "Department")) } dd { (a.department.as_deref().unwrap_or("")) }
                dt { (c.tr("本次登录", "Signed in")) } dd { (c.time(c.who.session.created_at)) }
            }
        }
        form.card #own-password method="post" action="/console/account" {
            h2 { (c.tr("修改密码", "Change your password")) }
            (c.csrf_field())
            label { (c.tr("当前密码", "Current password")) input type="password" name="current" required autocomplete="current-password"; }
            label { (c.tr("新密码（至少10位）", "New password (10 characters or more)")) input type="password" name="password" required autocomplete="new-password"; }
            p.small { (c.tr("修改后所有登录都将退出，请用新密码重新登录。", "Every session of your account ends; sign in again with the new password.")) }
            button type="submit" { (c.tr("修改", "Change")) }
        }
    };
    let mut response = c.page(c.tr("我的账号", "My account"), body);
    if let Some(err) = error {
        *response.status_mut() = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::BAD_REQUEST);
    }
    response
}

pub async fn show(c: Console) -> Response {
    page(&c, None)
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
}

pub async fn change(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    let form: PasswordForm = match c.form(&headers, &body) {
        Ok(f) => f,
        Err(err) => return c.error(err),
    };
    let me = c.who.account.principal();
    let result = accounts::set_password(
        &c.gw.store,
        &me,
        &hcrm_kit::new_id(),
        &me.subject,
        Some(&form.current),
        &form.password,
    )
    .await;
    match result {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(err) => page(&c, Some(&HttpError::from(err))),
    }
}
