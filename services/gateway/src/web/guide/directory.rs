//! The desk: "which department treats …" (FindDepartments, with location and phone), a doctor
//! looked up by name with the next clinic sessions (NextClinicSessions), and "experts of a
//! department or specialty on a weekday" (FindClinicSessions). Every question is a GET form,
//! so an answer can be bookmarked or sent to a colleague; results link on to the next sessions.

use super::*;
use axum::extract::RawQuery;
use axum::response::Response;
use hcrm_proto::patients::{
    ClinicSession, Department, DepartmentLocation, FindClinicSessionsRequest, FindDepartmentsRequest, GetDoctorRequest,
    NextClinicSessionsRequest,
};

/// The desk's questions as they came in the query (kept as typed, to refill the forms).
#[derive(Debug, Default)]
struct Questions {
    /// A condition, symptom or department name.
    q: String,
    /// A doctor's name, pinyin or initials.
    doctor: String,
    /// A department code whose doctors are listed.
    of: String,
    /// `doctors/{id}` whose next sessions are shown.
    next: String,
    department: String,
    specialty: String,
    weekday: String,
    experts: bool,
}

impl Questions {
    fn of(query: &[(String, String)]) -> Questions {
        Questions {
            q: one(query, "q").trim().to_string(),
            doctor: one(query, "doctor").trim().to_string(),
            of: one(query, "of").trim().to_string(),
            next: one(query, "next").trim().to_string(),
            department: one(query, "department").trim().to_string(),
            specialty: one(query, "specialty").trim().to_string(),
            weekday: one(query, "weekday").trim().to_string(),
            experts: one(query, "experts") == "1",
        }
    }
}

/// Today's weekday in the hospital's zone, as a slug.
fn today(c: &Console) -> &'static str {
    use chrono::Datelike;
    let micros = c.gw.store.now() + i64::from(c.gw.cfg.utc_offset_minutes) * 60_000_000;
    let day = chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.weekday().number_from_monday())
        .unwrap_or(1);
    WEEKDAYS.get(day as usize - 1).map(|l| l.slug).unwrap_or("monday")
}

fn next_href(doctor: &str) -> String {
    format!("/console/guide?next={}", super::super::page::url_encode(doctor))
}

fn location_text(l: &Option<DepartmentLocation>) -> String {
    l.as_ref()
        .map(|l| {
            [l.building.as_str(), l.floor.as_str(), l.room.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .unwrap_or_default()
}

fn forms(c: &Console, q: &Questions) -> Markup {
    let weekday = if q.weekday.is_empty() {
        today(c)
    } else {
        q.weekday.as_str()
    };
    html! {
        div.grid {
            form.card #find-departments method="get" action="/console/guide" role="search" {
                label { (c.tr("看什么科？症状、疾病或科室名", "Which department treats … (symptom, condition or name)"))
                    input name="q" value=(q.q) maxlength="64" placeholder=(c.tr("例如：胸痛", "e.g. chest pain"));
                }
                button type="submit" { (c.tr("查找科室", "Find departments")) }
            }
            form.card #find-doctor method="get" action="/console/guide" role="search" {
                label { (c.tr("医生姓名、拼音或首字母", "Doctor's name, pinyin or initials"))
                    input name="doctor" value=(q.doctor) maxlength="64";
                }
                button type="submit" { (c.tr("查出诊", "Next clinics")) }
            }
            form.card #find-sessions method="get" action="/console/guide" role="search" {
                label { (c.tr("科室代码", "Department code"))
                    input name="department" value=(q.department) maxlength="64" list="departments";
                }
                label { (c.tr("或专长", "or specialty")) input name="specialty" value=(q.specialty) maxlength="64"; }
                label { (c.tr("星期", "Weekday")) (select(c, "weekday", WEEKDAYS, weekday, None)) }
                label.choice { input type="checkbox" name="experts" value="1" checked[q.experts]; (c.tr("只看专家", "Experts only")) }
                button type="submit" { (c.tr("查出诊医生", "Find clinics")) }
            }
        }
    }
}

pub async fn show(c: Console, RawQuery(query): RawQuery) -> Response {
    let q = Questions::of(&pairs(query.unwrap_or_default().as_bytes()));
    let mut errors: Vec<HttpError> = Vec::new();
    let departments = if q.q.is_empty() {
        None
    } else {
        match directory_client(&c)
            .find_departments(FindDepartmentsRequest {
                query: q.q.clone(),
                limit: 20,
            })
            .await
        {
            Ok(r) => Some(r.into_inner().matches),
            Err(status) => {
                errors.push(HttpError::from(status));
                None
            }
        }
    };
    let doctors = if q.doctor.is_empty() && q.of.is_empty() {
        None
    } else {
        match directory_client(&c)
            .list_doctors(ListDoctorsRequest {
                page_size: 50,
                query: q.doctor.clone(),
                department: q.of.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => Some(r.into_inner().doctors),
            Err(status) => {
                errors.push(HttpError::from(status));
                None
            }
        }
    };
    // One doctor found by name: the next sessions at once.
    let next = match (&doctors, q.next.is_empty()) {
        (_, false) => q.next.clone(),
        (Some(found), true) if found.len() == 1 && !q.doctor.is_empty() => found[0].name.clone(),
        _ => String::new(),
    };
    let upcoming = if next.is_empty() {
        None
    } else {
        let mut dir = directory_client(&c);
        let mut dir2 = dir.clone();
        let (doctor, sessions) = tokio::join!(
            dir.get_doctor(GetDoctorRequest { name: next.clone() }),
            dir2.next_clinic_sessions(NextClinicSessionsRequest {
                doctor: next.clone(),
                from_time: None,
                limit: 8,
            })
        );
        match (doctor, sessions) {
            (Ok(d), Ok(s)) => Some((d.into_inner(), s.into_inner().sessions)),
            (Err(status), _) | (_, Err(status)) => {
                errors.push(HttpError::from(status));
                None
            }
        }
    };
    let clinics = if q.department.is_empty() && q.specialty.is_empty() {
        None
    } else {
        match parse_slug(WEEKDAYS, "weekday", &q.weekday) {
            Err(err) => {
                errors.push(err);
                None
            }
            Ok(weekday) => {
                let weekday = weekday.or_else(|| parse_slug(WEEKDAYS, "weekday", today(&c)).ok().flatten());
                match directory_client(&c)
                    .find_clinic_sessions(FindClinicSessionsRequest {
                        department: q.department.clone(),
                        specialty: q.specialty.clone(),
                        date: None,
                        weekday: weekday.map(|w| w as i32).unwrap_or_default(),
                        experts_only: q.experts,
                        kind: 0,
                    })
                    .await
                {
                    Ok(r) => Some(r.into_inner()),
                    Err(status) => {
                        errors.push(HttpError::from(status));
                        None
                    }
                }
            }
        }
    };
    let lists = directory_lists(&c).await;
    let body = html! {
        (subnav(&c, "/console/guide"))
        (forms(&c, &q))
        @for err in &errors { (c.error_box(err)) }
        @if let Some(found) = &departments {
            h2 { (c.tr("可就诊科室", "Departments")) " · " (q.q) }
            @if found.is_empty() {
                p #no-departments { (c.tr("没有找到相关科室，可换个说法再试。", "No department matches; try other words.")) }
            } @else {
                table #departments {
                    thead { tr {
                        th { (c.tr("科室", "Department")) } th { (c.tr("匹配", "Matched on")) }
                        th { (c.tr("位置", "Location")) } th { (c.tr("电话", "Phone")) } th {}
                    } }
                    tbody {
                        @for m in found {
                            @if let Some(d) = &m.department {
                                (department_row(&c, d, &m.matched))
                            }
                        }
                    }
                }
            }
        }
        @if let Some(found) = &doctors {
            h2 { (c.tr("医生", "Doctors")) }
            @if found.is_empty() {
                p #no-doctors { (c.tr("没有找到该医生。", "No doctor matches.")) }
            } @else {
                table #doctors {
                    thead { tr {
                        th { (c.tr("医生", "Doctor")) } th { (c.tr("职称", "Title")) } th { (c.tr("专长", "Specialties")) }
                        th { (c.tr("科室", "Departments")) } th { (c.tr("办公电话", "Office phone")) } th {}
                    } }
                    tbody {
                        @for d in found {
                            tr data-doctor=(d.name) {
                                td { (d.display_name) @if d.expert { " " span.tag.good { (c.tr("专家", "expert")) } } }
                                td { (name_of(&c, TITLES, d.title)) }
                                td { (d.specialties.join("、")) }
                                td { (d.departments.join(", ")) }
                                td { (d.office_phone) }
                                td { a.next href=(next_href(&d.name)) { (c.tr("下次出诊", "Next clinics")) } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some((doctor, sessions)) = &upcoming {
            h2 #next-for data-doctor=(doctor.name) {
                (doctor.display_name) " · " (name_of(&c, TITLES, doctor.title)) " · " (c.tr("近期出诊", "next clinics"))
            }
            p { a.log href={ "/console/guide/consultations?referral_doctor=" (super::super::page::url_encode(&doctor.name)) } { (c.tr("记录此次咨询（转介该医生）", "Log this consultation (referred to this doctor)")) } }
            @if sessions.is_empty() {
                p #no-sessions { (c.tr("近期没有出诊安排。", "No clinic session ahead.")) }
            } @else {
                (session_table(&c, "next-sessions", sessions, false))
            }
        }
        @if let Some(found) = &clinics {
            h2 #sessions-date { (c.tr("出诊", "Clinics on")) " " (super::super::page::date_text(&found.date)) }
            @if found.sessions.is_empty() {
                p #no-clinics { (c.tr("当天没有符合条件的出诊。", "No clinic that day matches.")) }
            } @else {
                (session_table(&c, "sessions", &found.sessions, true))
            }
        }
        (lists)
    };
    with_status(c.page(c.tr("导医台", "Guide desk"), body), errors.first())
}

fn department_row(c: &Console, d: &Department, matched: &[String]) -> Markup {
    html! {
        tr data-department=(d.code) {
            td { strong { (c.pick(&d.display_name, &d.english_name)) } br; code.small { (d.code) } }
            td.small { (matched.join("、")) }
            td { (location_text(&d.location)) }
            td { (d.phone) }
            td {
                a href={ "/console/guide?of=" (super::super::page::url_encode(&d.code)) } { (c.tr("医生与出诊", "Doctors and clinics")) }
                br;
                a href={ "/console/guide?department=" (super::super::page::url_encode(&d.code)) "&experts=1" } { (c.tr("今日专家", "Experts today")) }
                br;
                a.log href={ "/console/guide/consultations?referral_department=" (super::super::page::url_encode(&d.code)) } { (c.tr("记录此次咨询", "Log this consultation")) }
            }
        }
    }
}

/// Clinic sessions; `with_doctor` adds who holds them (and a link to their next sessions).
fn session_table(c: &Console, id: &str, sessions: &[ClinicSession], with_doctor: bool) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                @if with_doctor { th { (c.tr("医生", "Doctor")) } th { (c.tr("专长", "Specialties")) } }
                th { (c.tr("日期", "Date")) } th { (c.tr("时段", "Session")) } th { (c.tr("时间", "Time")) }
                th { (c.tr("科室", "Department")) } th { (c.tr("门诊类型", "Clinic")) } th { (c.tr("地点", "Where")) }
            } }
            tbody {
                @for s in sessions {
                    tr data-doctor=(s.doctor) data-source=(s.source) {
                        @if with_doctor {
                            td {
                                a href=(next_href(&s.doctor)) { (s.doctor_display_name) }
                                " " span.small { (name_of(c, TITLES, s.doctor_title)) }
                                @if s.expert { " " span.tag.good { (c.tr("专家", "expert")) } }
                            }
                            td { (s.specialties.join("、")) }
                        }
                        td { (super::super::page::date_text(&s.date)) " " (name_of(c, WEEKDAYS, s.weekday)) }
                        td { (name_of(c, DAY_SESSIONS, s.session)) }
                        td { (s.start_time) "–" (s.end_time) }
                        td { (s.department_display_name) }
                        td { (name_of(c, CLINIC_KINDS, s.kind)) }
                        td { (s.location) }
                    }
                }
            }
        }
    }
}
