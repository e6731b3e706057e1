//! `lanyard clock …`: the test lab's clock from the command line (development features
//! only). It writes the setting to the database, so every server on it (with development
//! features) keeps the new time once the command returns.

use clap::Subcommand;

use super::output::print_json;
use crate::clock::{ClockChange, ClockView, parse_seconds, real_now};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// Print the servers' "now" beside the wall clock's.
    Show {
        /// Print JSON instead of text.
        /// Print the clock as JSON (now, real_now, offset_seconds, frozen, …).
        #[arg(long)]
        json: bool,
    },
    /// Move the clock forward: 90, 90s, 15m, 1h or 2d.
    Advance {
        /// How far: 90, 90s, 15m, 1h or 2d.
        #[arg(value_name = "DURATION", value_parser = parse_seconds)]
        by: i64,
        /// Print the clock as JSON (now, real_now, offset_seconds, frozen, …).
        #[arg(long)]
        json: bool,
    },
    /// Set the offset from the wall clock (negative goes back): 0, -10m, 1d.
    Set {
        /// The offset: 0, -10m, 1d (seconds without a unit).
        #[arg(long, value_name = "DURATION", value_parser = parse_seconds, allow_hyphen_values = true)]
        offset: i64,
        /// Print the clock as JSON (now, real_now, offset_seconds, frozen, …).
        #[arg(long)]
        json: bool,
    },
    /// Stop the clock at its current "now" (`advance` still moves it).
    Freeze {
        /// Print the clock as JSON (now, real_now, offset_seconds, frozen, …).
        #[arg(long)]
        json: bool,
    },
    /// Let a frozen clock run on from where it stands.
    Unfreeze {
        /// Print the clock as JSON (now, real_now, offset_seconds, frozen, …).
        #[arg(long)]
        json: bool,
    },
    /// Back to the wall clock.
    Reset {
        /// Print the clock as JSON (now, real_now, offset_seconds, frozen, …).
        #[arg(long)]
        json: bool,
    },
}

impl ClockCommand {
    pub async fn run(self, config: &Config, store: &Store) -> anyhow::Result<()> {
        if !config.dev_features() {
            anyhow::bail!(crate::lab::CLOCK_DEV_ONLY);
        }
        let change = |c: ClockChange| Some(c);
        let (change, json) = match self {
            Self::Show { json } => (None, json),
            Self::Advance { by, json } => {
                (change(ClockChange { advance_seconds: Some(by), ..Default::default() }), json)
            }
            Self::Set { offset, json } => {
                (change(ClockChange { offset_seconds: Some(offset), ..Default::default() }), json)
            }
            Self::Freeze { json } => (change(ClockChange { freeze: Some(true), ..Default::default() }), json),
            Self::Unfreeze { json } => (change(ClockChange { freeze: Some(false), ..Default::default() }), json),
            Self::Reset { json } => (change(ClockChange { reset: true, ..Default::default() }), json),
        };
        let view = match change {
            Some(change) => {
                let view = crate::lab::set_clock(store, &change).await?;
                store.audit("cli", "clock.set", "clock", &describe(&view)).await?;
                view
            }
            None => ClockView::of(store.clock_setting().await?, real_now()),
        };
        if json {
            return print_json(&view);
        }
        println!("{}", describe(&view));
        Ok(())
    }
}

/// One line: the servers' now, and how it stands to the wall clock.
fn describe(view: &ClockView) -> String {
    format!("now {} — {}; wall clock {}", view.now_utc, view.how(), view.real_now_utc)
}
