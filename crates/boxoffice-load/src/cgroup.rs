//! CPU and memory caps like a container's, with cgroups: v2 where mounted, else v1. When capping
//! is impossible (no permission, no controller) the run goes on uncapped and says so.

use std::fs;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory_bytes.is_none()
    }
}

/// Parses 512M, 1G, 256m, 1048576 into bytes.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("not a size: {s:?} (write e.g. 512M or 1G)"))?;
    if n <= 0.0 {
        return Err(format!("size must be positive: {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// A cgroup (or a pair of v1 cgroups) that the servers run in, removed on drop.
pub struct Cgroup {
    /// Files a process writes its pid into to join.
    pub procs_files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    memory_dir: Option<(PathBuf, bool)>,
    pub description: String,
}

impl Cgroup {
    pub fn create(name: &str, limits: Limits) -> Result<Cgroup, String> {
        if limits.is_empty() {
            return Err("no limits asked for".into());
        }
        let v2 = PathBuf::from("/sys/fs/cgroup/cgroup.controllers");
        if v2.exists() {
            Self::create_v2(name, limits)
        } else {
            Self::create_v1(name, limits)
        }
    }

    fn create_v2(name: &str, limits: Limits) -> Result<Cgroup, String> {
        let dir = PathBuf::from("/sys/fs/cgroup").join(name);
        let _ = fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+cpu +memory");
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut cg = Cgroup {
            procs_files: vec![dir.join("cgroup.procs")],
            dirs: vec![dir.clone()],
            memory_dir: None,
            description: String::new(),
        };
        if let Some(cpus) = limits.cpus {
            fs::write(dir.join("cpu.max"), format!("{} 100000", (cpus * 100_000.0) as u64))
                .map_err(|e| format!("cpu.max: {e}"))?;
        }
        if let Some(bytes) = limits.memory_bytes {
            fs::write(dir.join("memory.max"), bytes.to_string()).map_err(|e| format!("memory.max: {e}"))?;
            let _ = fs::write(dir.join("memory.swap.max"), "0");
            cg.memory_dir = Some((dir.clone(), true));
        }
        cg.description = format!("cgroup v2 {}", dir.display());
        Ok(cg)
    }

    fn create_v1(name: &str, limits: Limits) -> Result<Cgroup, String> {
        let mut cg = Cgroup { procs_files: vec![], dirs: vec![], memory_dir: None, description: String::new() };
        let mut parts = Vec::new();
        if let Some(cpus) = limits.cpus {
            let dir = PathBuf::from("/sys/fs/cgroup/cpu").join(name);
            fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            cg.dirs.push(dir.clone());
            fs::write(dir.join("cpu.cfs_period_us"), "100000").map_err(|e| format!("cpu.cfs_period_us: {e}"))?;
            fs::write(dir.join("cpu.cfs_quota_us"), ((cpus * 100_000.0) as u64).to_string())
                .map_err(|e| format!("cpu.cfs_quota_us: {e}"))?;
            cg.procs_files.push(dir.join("cgroup.procs"));
            parts.push(dir.display().to_string());
        }
        if let Some(bytes) = limits.memory_bytes {
            let dir = PathBuf::from("/sys/fs/cgroup/memory").join(name);
            fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            cg.dirs.push(dir.clone());
            fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())
                .map_err(|e| format!("memory.limit_in_bytes: {e}"))?;
            let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
            cg.procs_files.push(dir.join("cgroup.procs"));
            cg.memory_dir = Some((dir.clone(), false));
            parts.push(dir.display().to_string());
        }
        cg.description = format!("cgroup v1 {}", parts.join(" + "));
        Ok(cg)
    }

    /// Peak memory of the group and how often it hit its limit, where the kernel tells.
    pub fn memory_report(&self) -> Option<(u64, u64)> {
        let (dir, v2) = self.memory_dir.as_ref()?;
        let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
        if *v2 {
            let peak = read("memory.peak").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            let events = read("memory.events").unwrap_or_default();
            let max_hits =
                events.lines().find_map(|l| l.strip_prefix("max ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            Some((peak, max_hits))
        } else {
            let peak = read("memory.max_usage_in_bytes").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            let fails = read("memory.failcnt").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            Some((peak, fails))
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse() {
        assert_eq!(parse_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("-1M").is_err());
    }
}
