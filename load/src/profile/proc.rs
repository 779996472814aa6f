//! The /proc readers: CPU ticks of a process, its children and the machine, a
//! process's writes, the load average.

use std::collections::BTreeMap;

/// The CPU fields of `/proc/PID/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ProcStat {
    pub(super) ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Parses a `/proc/PID/stat` line; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some(ProcStat {
        ppid: f.get(1)?.parse().ok()?,
        utime: num(11)?,
        stime: num(12)?,
        cutime: num(13)?,
        cstime: num(14)?,
    })
}

pub(super) fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn self_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or(0, |s| s.utime + s.stime)
}

/// The children of `parent` (any process whose ppid it is), with their CPU.
fn children(parent: u32) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(s) = proc_stat(pid)
            && s.ppid == parent
        {
            out.insert(pid, s.utime + s.stime);
        }
    }
    out
}

/// `/proc/stat`'s first line: (busy, total) ticks of the whole machine; idle and
/// iowait are not busy.
fn parse_machine(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.filter_map(|s| s.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest and guest_nice are
    // already inside user and nice).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn machine() -> (u64, u64) {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_machine(&s))
        .unwrap_or((0, 0))
}

/// `/proc/PID/io`: bytes sent to the storage layer, bytes passed to write(2)-like
/// calls, and their count.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProcIo {
    pub(super) write_bytes: u64,
    pub(super) wchar: u64,
    pub(super) syscw: u64,
}

pub(super) fn proc_io(pid: u32) -> Option<ProcIo> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse::<u64>().ok())
    };
    Some(ProcIo {
        write_bytes: get("write_bytes:")?,
        wchar: get("wchar:")?,
        syscw: get("syscw:")?,
    })
}

/// The load average, as `uptime` prints it.
pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Clock ticks per second of the `/proc` CPU fields (USER_HZ).
pub(super) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        // USER_HZ is 100 on every Linux architecture this runs on.
        .unwrap_or(100.0)
}

/// CPU at one instant: the service, the PostgreSQL cluster (when it is local), this
/// load tool, the machine.
#[derive(Clone, Debug, Default)]
pub(super) struct Cpu {
    pub(super) service: u64,
    /// Postmaster (with its exited children) + every live child.
    pub(super) pg_total: Option<u64>,
    /// Per live child of the postmaster.
    pub(super) pg_children: BTreeMap<u32, u64>,
    pub(super) load_tool: u64,
    pub(super) machine_busy: u64,
    pub(super) machine_total: u64,
}

pub(super) fn cpu_now(service: u32, postmaster: Option<u32>) -> Cpu {
    let service = proc_stat(service).map_or(0, |s| s.utime + s.stime);
    let (pg_total, pg_children) = match postmaster.and_then(|p| Some((p, proc_stat(p)?))) {
        Some((pm, s)) => {
            let kids = children(pm);
            let total = s.utime + s.stime + s.cutime + s.cstime + kids.values().sum::<u64>();
            (Some(total), kids)
        }
        None => (None, BTreeMap::new()),
    };
    let (machine_busy, machine_total) = machine();
    Cpu {
        service,
        pg_total,
        pg_children,
        load_tool: self_ticks(),
        machine_busy,
        machine_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name() {
        let line = "1234 (postgres: x (y)) S 99 1234 1234 0 -1 4194560 500 0 0 0 \
                    17 4 2 3 20 0 1 0 100 0 0";
        let s = parse_stat(line).expect("parses");
        assert_eq!(
            s,
            ProcStat {
                ppid: 99,
                utime: 17,
                stime: 4,
                cutime: 2,
                cstime: 3
            }
        );
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine(text), Some((160, 1000)));
        assert!(parse_machine("intr 1 2 3").is_none());
    }

    #[test]
    fn cpu_of_this_process_is_readable() {
        // Linux only, as the profiler: /proc/self/stat parses and its parent exists.
        let s = proc_stat(std::process::id()).expect("own /proc/PID/stat");
        assert!(s.ppid > 0);
        assert!(clock_ticks() > 0.0);
    }
}
