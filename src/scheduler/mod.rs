//! The scheduler: `dirsync serve` runs sync cycles every interval, honours the admin's
//! settings (suspend, staging mode, next policy, connector overrides), schedules periodic
//! full reconciliation, stops gracefully after the current step, and serves `/healthz` and
//! `/metrics` on loopback.
//!
//! Settings ([`SchedulerSettings`]) live in a side file next to the state (see
//! [`settings`] for why), so they can be changed while a cycle holds the state lock.

pub mod metrics;
pub mod runner;
pub mod settings;

pub use metrics::CycleSummary;
pub use runner::{
    Health, SchedulerHandle, ServeOptions, ServeReport, ServeStatus, serve, serve_status,
    serve_status_path, start,
};
pub use settings::{
    ConnectorOverride, ConnectorOverridePatch, NextCyclePolicy, SchedulerPatch, SchedulerSettings,
    load_settings, settings_path, update_settings,
};

use crate::engine::{Engine, EngineError};

/// Errors of the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A setting value is not acceptable.
    #[error("scheduler setting {key}: {message}")]
    Invalid {
        /// The setting (JSON field name).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The settings side file could not be decoded.
    #[error("{path}: scheduler settings are unreadable: {message}")]
    Corrupt {
        /// Side file.
        path: String,
        /// Decoder message.
        message: String,
    },
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The status endpoint would listen beyond loopback without the explicit flag.
    #[error(
        "refusing to serve the status endpoint on non-loopback address {0}; pass --allow-remote to allow it"
    )]
    NonLoopback(String),
    /// An engine failure outside a cycle (opening the state, reading status).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Configuration failure.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Engine {
    /// The effective scheduler settings of this engine's configuration and state.
    pub fn scheduler_settings(&self) -> Result<SchedulerSettings, SchedulerError> {
        load_settings(&self.config)
    }

    /// Validates and stores a change of scheduler settings; returns the new settings.
    /// A running `dirsync serve` picks it up before its next cycle.
    pub fn set_scheduler_settings(
        &mut self,
        patch: &SchedulerPatch,
    ) -> Result<SchedulerSettings, SchedulerError> {
        let settings = update_settings(&self.config, patch)?;
        if let Some(on) = patch.staging_mode {
            // This engine's own runs follow the switch at once (others on their next open).
            self.config.safety.staging_mode = on;
        }
        Ok(settings)
    }
}
