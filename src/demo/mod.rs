//! `hcrm demo`: fills an empty installation with a synthetic hospital through the public gRPC
//! APIs, as other integrations would, so that a newcomer's console shows meaningful figures and
//! the benchmarks have data: departments and doctors, patients with families and a timeline,
//! discharges with follow-up plans and recorded calls, cases in every state, a published survey
//! with answers, mentions with a repost storm and incidents, the guide desk's directory (doctors
//! and weekly clinics), consultations, service requests, segments and referrals, and the
//! console's staff accounts.
//!
//! Every person, number and post is generated (see `names`, `ids`, `posts`); the same seed
//! gives the same hospital, placed relative to the moment the demo runs.

mod accounts;
mod case_texts;
mod case_workflow;
mod cases;
mod context;
mod followups;
mod guide;
mod hospital;
mod ids;
mod names;
mod opinion;
mod patients;
mod posts;
mod surveys;
mod timeline;

use crate::Settings;
use context::Demo;
use hcrm_kit::auth::Authenticator;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

/// Options of `hcrm demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// gRPC address of the installation to fill; default this configuration's `server.grpc_addr`.
    #[arg(long)]
    pub url: Option<String>,
    /// How many patients to create.
    #[arg(long, default_value_t = 2000)]
    pub patients: usize,
    /// Seed of the random generator (the same seed gives the same hospital).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            url: None,
            patients: 2000,
            seed: 2026,
        }
    }
}

/// A listener address as a client reaches it: the unspecified address means this machine.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// Runs one stage with its log lines; a failure names the stage and keeps the cause.
async fn stage<T>(name: &str, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let started = Instant::now();
    tracing::info!(stage = name, "demo stage started");
    let out = work
        .await
        .map_err(|e| anyhow::anyhow!("demo stage {name} failed: {e:#}"))?;
    tracing::info!(
        stage = name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "demo stage done"
    );
    Ok(out)
}

/// Synthetic patients have random (if valid-looking) mobile numbers: the demo must not fill an
/// installation whose notifiers would text or mail them for real.
fn refuse_live_notifiers(settings: &Settings) -> anyhow::Result<()> {
    for (section, kind) in [
        ("followup", &settings.followup.notifier.kind),
        ("feedback", &settings.feedback.notifier.kind),
    ] {
        anyhow::ensure!(
            kind == "log",
            "{section}.notifier.kind is {kind:?}: hcrm demo only fills installations whose notifiers log \
             (its synthetic patients' phone numbers are random and may belong to someone)"
        );
    }
    Ok(())
}

/// Fills the installation at `args.url` unless it already has patients.
pub async fn run(settings: &Settings, args: &DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", reachable(settings.server.grpc_addr)));
    anyhow::ensure!(args.patients >= 1, "--patients must be at least 1");
    refuse_live_notifiers(settings)?;
    let (authenticator, generated) = Authenticator::from_config(&settings.auth, &settings.data.dir)?;
    if generated {
        tracing::warn!(
            data_dir = %settings.data.dir.display(),
            "no token signing key was configured or found: generated one; the installation accepts the demo's \
             tokens only if it uses the same key (run hcrm demo with the server's --data-dir)"
        );
    }
    let channel = hcrm_kit::client::lazy_channel(&url)?;
    let demo = Demo::new(channel, authenticator, args.seed, settings.followup.utc_offset_minutes);
    if stage("check", patients::any(&demo)).await? {
        println!("{url} already has patients: hcrm demo fills only an empty installation, nothing was changed");
        return Ok(());
    }
    tracing::info!(%url, patients = args.patients, seed = args.seed, "filling the demo hospital");
    let password = accounts::password();
    let (accounts, opinion, centre) = tokio::try_join!(
        stage("accounts", accounts::create(settings, &password)),
        stage("opinion", opinion::fill(&demo, args.patients)),
        centre(&demo, args.patients, settings.patients.booking.kind == "log"),
    )?;
    let console = format!("http://{}/", reachable(settings.gateway.http_addr));
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(seconds, "demo hospital filled");
    print!("{}", summary(&url, &console, seconds, &accounts, &opinion, &centre));
    Ok(())
}

/// What the patient-facing services hold after the demo.
struct Centre {
    organisations: usize,
    patients: usize,
    relatives: usize,
    timeline: usize,
    discharges: usize,
    templates: usize,
    followups: followups::Figures,
    cases: cases::Figures,
    surveys: surveys::Figures,
    directory: guide::Directory,
    desk: guide::Figures,
}

/// `book`: whether appointment requests may be made (the booking platform's notifier logs).
async fn centre(demo: &Demo, count: usize, book: bool) -> anyhow::Result<Centre> {
    // Templates first: followup makes plans from discharges as they arrive.
    let templates = stage("templates", followups::templates(demo)).await?;
    let organisations = stage("organisations", patients::organisations(demo)).await?;
    // The directory comes from the HIS too, beside the patients.
    let (people, directory) = tokio::try_join!(
        stage("patients", patients::import(demo, count)),
        stage("directory", guide::directory(demo)),
    )?;
    let timeline = timeline::generate(demo, &people);
    // Stays go in first, so followup reaches the discharges before the rest of the timeline.
    stage("discharges", timeline::import(demo, &timeline.stays)).await?;
    let order: HashMap<String, usize> = people.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
    let (relatives, _, followups, cases, surveys, desk) = tokio::try_join!(
        stage("relatives", patients::relatives(demo, &people)),
        stage("timeline", timeline::import(demo, &timeline.rest)),
        stage("follow-ups", async {
            let plans = followups::wait_for_plans(demo, timeline.expected_plans).await?;
            followups::work(demo, &order, &plans).await
        }),
        stage("cases", cases::fill(demo, &people)),
        stage("surveys", surveys::fill(demo, &people)),
        stage("guide desk", guide::desk(demo, &people, &directory, book)),
    )?;
    Ok(Centre {
        organisations,
        patients: people.len(),
        relatives,
        timeline: timeline.entries(),
        discharges: timeline.discharges,
        templates,
        followups,
        cases,
        surveys,
        directory,
        desk,
    })
}

fn summary(
    url: &str,
    console: &str,
    seconds: f64,
    accounts: &accounts::Created,
    opinion: &opinion::Figures,
    c: &Centre,
) -> String {
    let f = &c.followups;
    let states: Vec<String> = c.cases.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let mut out = format!("\nThe demo hospital is ready ({url}, {seconds:.1} s).\n\n");
    out += &format!("Console:   {console}\n");
    let usernames: Vec<&str> = accounts::ACCOUNTS.iter().map(|a| a.0).collect();
    out += &format!("Users:     {}\n", usernames.join(", "));
    out += &format!("Password:  {}\n", accounts.password);
    if !accounts.existing.is_empty() {
        out += &format!(
            "           (existing accounts kept their passwords: {})\n",
            accounts.existing.join(", ")
        );
    }
    out += "\nCreated:\n";
    out += &format!("  organisations        {}\n", c.organisations);
    out += &format!(
        "  patients             {} (family members {})\n",
        c.patients, c.relatives
    );
    out += &format!("  timeline entries     {} (discharges {})\n", c.timeline, c.discharges);
    out += &format!(
        "  follow-up            {} templates, {} plans, {} tasks, {} calls recorded ({} raised a complaint)\n",
        c.templates, f.plans, f.tasks, f.calls, f.complaints_raised
    );
    out += &format!(
        "  open calls           {} due today ({} in inspector's list), {} left overdue\n",
        f.due_today, f.for_console, f.overdue
    );
    out += &format!("  cases                {} ({})\n", c.cases.cases, states.join(", "));
    out += &format!(
        "  survey               {} published, {} invitations, {} answers ({} low ratings opened cases), {} window ratings\n",
        c.surveys.questionnaire,
        c.surveys.invitations,
        c.surveys.responses,
        c.surveys.low_ratings,
        c.surveys.counter_ratings
    );
    out += &format!(
        "  opinion              {} watched entities, {} alert rules, {} mentions in {} stories (the storm: {} mentions), {} incidents\n",
        opinion.entities,
        opinion.alert_rules,
        opinion.mentions,
        opinion.stories,
        opinion.storm_mentions,
        opinion.incidents
    );
    let d = &c.directory;
    out += &format!(
        "  directory            {} departments, {} doctors ({} experts), {} weekly clinics, {} schedule exceptions\n",
        d.departments,
        d.doctors.len(),
        d.doctors.iter().filter(|doc| doc.expert).count(),
        d.patterns,
        d.exceptions
    );
    let g = &c.desk;
    out += &format!(
        "  consultations        {} in the last 30 days ({} about patients, {} referred)\n",
        g.consultations, g.about_patients, g.referred
    );
    let requests: Vec<String> = g.by_state.iter().map(|(s, n)| format!("{s} {n}")).collect();
    out += &format!(
        "  service requests     {} ({}), {} overdue\n",
        g.service_requests,
        requests.join(", "),
        g.overdue
    );
    out += &format!("  appointment requests {}\n", g.appointments);
    out += &format!(
        "  customers            {} segments, {} referrals\n",
        g.segments, g.referrals
    );
    out += &format!("  console accounts     {} created\n", accounts.created.len());
    out
}
