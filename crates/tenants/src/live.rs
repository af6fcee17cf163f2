//! The tenants as they are now: loaded at start-up, reloaded when the secrets file changes (a
//! Kubernetes Secret volume is updated in place, within a minute) or on SIGHUP, so adding,
//! rotating or revoking a key or a carrier credential needs no restart. A reload that fails (a
//! broken file, or what `check` refuses) keeps the tenants in force and says why in the log.

use crate::{Tenants, TenantsError};
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the secrets file is read to see whether it changed.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// What a service checks of a tenants set before using it (the dialer: carrier credentials).
pub type Check = fn(&Tenants) -> Result<(), String>;

/// The tenants in force, and where they come from.
pub struct LiveTenants {
    file: Option<PathBuf>,
    json: Option<SecretString>,
    check: Check,
    current: RwLock<Arc<Tenants>>,
    /// The file's bytes when last loaded (compared, never logged).
    loaded_from: RwLock<Option<Vec<u8>>>,
}

impl std::fmt::Debug for LiveTenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LiveTenants({:?}, {} tenants)",
            self.file,
            self.get().len()
        )
    }
}

fn no_check(_: &Tenants) -> Result<(), String> {
    Ok(())
}

impl LiveTenants {
    /// Loads `file` then `json` (as [`Tenants::load`]); `check` must accept the result, now and
    /// on every reload.
    pub fn load(
        file: Option<PathBuf>,
        json: Option<SecretString>,
        check: Option<Check>,
    ) -> Result<Arc<LiveTenants>, TenantsError> {
        let live = LiveTenants {
            file,
            json,
            check: check.unwrap_or(no_check),
            current: RwLock::new(Arc::new(Tenants::default())),
            loaded_from: RwLock::new(None),
        };
        live.reload()?;
        Ok(Arc::new(live))
    }

    /// Tenants that never change (tests, tools).
    pub fn fixed(tenants: Tenants) -> Arc<LiveTenants> {
        Arc::new(LiveTenants {
            file: None,
            json: None,
            check: no_check,
            current: RwLock::new(Arc::new(tenants)),
            loaded_from: RwLock::new(None),
        })
    }

    /// The tenants in force (a snapshot: a reload does not change it under a request).
    pub fn get(&self) -> Arc<Tenants> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Loads the sources again and, if `check` accepts them, puts them in force.
    pub fn reload(&self) -> Result<(), TenantsError> {
        let bytes = match &self.file {
            Some(path) => Some(std::fs::read(path).map_err(|source| TenantsError::Read {
                path: path.display().to_string(),
                source,
            })?),
            None => None,
        };
        let tenants = Tenants::load(self.file.as_deref(), self.json.as_ref())?;
        (self.check)(&tenants).map_err(TenantsError::Refused)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tenants);
        *self.loaded_from.write().unwrap_or_else(|p| p.into_inner()) = bytes;
        Ok(())
    }

    /// Whether the file's contents differ from what was last loaded.
    fn file_changed(&self) -> bool {
        let Some(path) = &self.file else {
            return false;
        };
        let now = std::fs::read(path).ok();
        let loaded = self.loaded_from.read().unwrap_or_else(|p| p.into_inner());
        now != *loaded
    }

    /// Reloads on SIGHUP and whenever the file changes (checked every [`POLL_EVERY`]), until
    /// `stop` resolves. Each reload is logged with the number of tenants and keys; a failed
    /// one with why, keeping the tenants in force; `reloaded` is told each outcome (metrics).
    pub async fn watch(
        self: Arc<Self>,
        reloaded: impl Fn(bool),
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hup) => Some(hup),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; the tenants file is still watched");
                None
            }
        };
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            let why = tokio::select! {
                () = &mut stop => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
                _ = poll.tick() => {
                    if !self.file_changed() {
                        continue;
                    }
                    "the tenants file changed"
                }
            };
            let outcome = self.reload();
            reloaded(outcome.is_ok());
            match outcome {
                Ok(()) => {
                    let tenants = self.get();
                    tracing::info!(
                        reason = why,
                        tenants = tenants.len(),
                        api_keys = tenants.api_key_count(),
                        "tenants reloaded"
                    );
                }
                Err(e) => {
                    tracing::error!(reason = why, error = %e, "tenants not reloaded; the previous ones stay in force");
                    // Not retried until the file changes again (or another SIGHUP).
                    if let Some(path) = &self.file {
                        *self.loaded_from.write().unwrap_or_else(|p| p.into_inner()) =
                            std::fs::read(path).ok();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_contracts::TenantId;

    #[test]
    fn a_reload_puts_a_changed_file_in_force_and_a_broken_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.json");
        std::fs::write(&file, r#"{"acme": {"twilio_auth_token": "t1"}}"#).unwrap();
        let live = LiveTenants::load(Some(file.clone()), None, None).unwrap();
        assert!(!live.file_changed());
        let acme = TenantId::new("acme").unwrap();
        let beta = TenantId::new("beta").unwrap();
        assert!(live.get().get(&beta).is_none());

        std::fs::write(
            &file,
            r#"{"acme": {"twilio_auth_token": "t1"}, "beta": {"twilio_auth_token": "t2"}}"#,
        )
        .unwrap();
        assert!(live.file_changed());
        let before = live.get();
        live.reload().unwrap();
        assert!(live.get().get(&beta).is_some());
        assert!(before.get(&beta).is_none(), "a snapshot never changes");

        std::fs::write(&file, r#"{"acme": "#).unwrap();
        assert!(live.reload().is_err());
        assert!(live.get().get(&acme).is_some() && live.get().get(&beta).is_some());
    }
}
