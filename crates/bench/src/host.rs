//! How much CPU the hypervisor took from this virtual machine while a phase ran ("steal" in
//! /proc/stat). On a shared VM it moves the absolute figures and the tail latencies from one
//! minute to the next; the report shows it beside them so a reader can tell a quiet run from
//! a disturbed one.

/// The machine's cumulative CPU time counters, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    steal: u64,
    total: u64,
}

impl CpuTimes {
    /// The counters now (zeros where /proc/stat is unavailable).
    pub fn now() -> CpuTimes {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
        // already counted in user and nice.
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .filter(|l| l.starts_with("cpu "))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|f| f.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        CpuTimes {
            steal: fields.get(7).copied().unwrap_or(0),
            total: fields.iter().take(8).sum(),
        }
    }

    /// Percentage of all CPU time since `earlier` that the hypervisor took.
    pub fn steal_percent_since(self, earlier: CpuTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        self.steal.saturating_sub(earlier.steal) as f64 * 100.0 / total as f64
    }
}
