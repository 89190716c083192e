//! Memory as a resource of the local executor: stages declare what they need (`resources = { mem = "14G" }`, the
//! same field a Slurm job's `--mem` comes from), and a run never starts a stage whose need, added to what the
//! stages running beside it declared, exceeds its budget (the machine's memory unless `--mem` says otherwise).
//!
//! Why: at paper scale one `instruct.curriculum` instance peaks at 13 GiB and a matrix has four; with `-j 2` two
//! of them at once would exceed a 24 GiB machine and be killed. Snakemake users know this as
//! `--resources mem_mb=…`. Stages that declare nothing count as needing nothing, so small pipelines keep their
//! parallelism untouched. A stage that needs more than the whole budget still runs, alone: refusing it would
//! make the pipeline impossible rather than safer.
//!
//! The budget gates the running of a stage's code only: the cache lookup before it takes no memory worth
//! counting, so a cached stage is never held back by a running one.

use std::sync::{Condvar, Mutex};

use serde::{Deserialize, Serialize};

/// An amount of memory written in Slurm's syntax: an integer with an optional unit `K`, `M`, `G` or `T` (binary
/// multiples; no unit means `M`, as in `sbatch --mem`). Kept as written, so that a Slurm job gets exactly the
/// text the user gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemSize {
    text: String,
    bytes: u64,
}

impl MemSize {
    /// Bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl std::fmt::Display for MemSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for MemSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{text}`: expected a memory size as Slurm writes it, an integer with K, M, G or T (500M, 64G)"
            )
        };
        let t = text.trim();
        let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
            Some(at) => t.split_at(at),
            None => (t, "M"),
        };
        let shift = match unit.to_ascii_uppercase().as_str() {
            "K" | "KB" | "KIB" => 10,
            "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let bytes = n.checked_mul(1 << shift).ok_or_else(bad)?;
        Ok(MemSize {
            text: t.to_string(),
            bytes,
        })
    }
}

impl Serialize for MemSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for MemSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The machine's physical memory (`MemTotal` of `/proc/meminfo`); `None` where that cannot be read.
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory the running stages of one run have declared, against a total.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    held: Mutex<u64>,
    freed: Condvar,
}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Self {
        MemoryBudget {
            total,
            held: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// The budget's size in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Waits until `need` bytes fit beside what is held (or nothing is held: a need larger than the budget runs
    /// alone), then holds them until the grant is dropped. A need of 0 never waits.
    pub fn acquire(&self, need: u64) -> MemoryGrant<'_> {
        if need == 0 {
            return MemoryGrant {
                budget: self,
                need: 0,
            };
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held > 0 && held.saturating_add(need) > self.total {
            held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held += need;
        MemoryGrant { budget: self, need }
    }
}

/// Memory held for one running stage; given back when dropped (a stage that fails or panics included).
#[derive(Debug)]
pub struct MemoryGrant<'a> {
    budget: &'a MemoryBudget,
    need: u64,
}

impl Drop for MemoryGrant<'_> {
    fn drop(&mut self) {
        if self.need == 0 {
            return;
        }
        let mut held = self.budget.held.lock().unwrap_or_else(|e| e.into_inner());
        *held -= self.need;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn sizes_read_as_slurm_reads_them() {
        let b = |s: &str| s.parse::<MemSize>().map(|m| m.bytes());
        assert_eq!(b("500"), Ok(500 << 20));
        assert_eq!(b("500M"), Ok(500 << 20));
        assert_eq!(b("64G"), Ok(64 << 30));
        assert_eq!(b("64g"), Ok(64 << 30));
        assert_eq!(b("2T"), Ok(2 << 40));
        assert_eq!(b("512K"), Ok(512 << 10));
        assert_eq!("64G".parse::<MemSize>().unwrap().to_string(), "64G");
        for bad in ["", "G", "1.5G", "-1G", "12Q", "lots", "99999999999999T"] {
            let e = b(bad).unwrap_err();
            assert!(e.contains(&format!("`{bad}`")) && e.contains("64G"), "{e}");
        }
    }

    #[test]
    fn a_need_waits_until_it_fits_and_an_oversized_one_runs_alone() {
        let budget = Arc::new(MemoryBudget::new(10));
        let first = budget.acquire(6);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let _g = budget.acquire(6);
                tx.send(()).unwrap();
            })
        };
        // 6 + 6 > 10: the second waits while the first is held...
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        // ...a need of 0, or one that fits, does not...
        drop(budget.acquire(0));
        drop(budget.acquire(4));
        drop(first);
        // ...and it runs once the first is given back.
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
        // More than the whole budget: granted when nothing else is held.
        drop(budget.acquire(100));
        assert_eq!(*budget.held.lock().unwrap(), 0);
    }

    #[test]
    fn this_machine_reports_its_memory() {
        if cfg!(target_os = "linux") {
            assert!(machine_memory().unwrap() > 1 << 28);
        }
    }
}
