//! What an audit reports, whoever runs the checks (a store, or a waiting room on its own).

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub name: &'static str,
    pub ok: bool,
    /// Offending rows, rendered as text; capped so a broken store cannot flood the report.
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub checks: Vec<AuditCheck>,
}

impl AuditReport {
    pub fn from_checks(checks: Vec<AuditCheck>) -> Self {
        Self { ok: checks.iter().all(|c| c.ok), checks }
    }

    /// Adds checks made elsewhere (the waiting room's own).
    pub fn extend(&mut self, more: Vec<AuditCheck>) {
        self.checks.extend(more);
        self.ok = self.checks.iter().all(|c| c.ok);
    }
}

/// The largest number of offending rows an audit check reports.
pub const AUDIT_SAMPLE: usize = 50;
