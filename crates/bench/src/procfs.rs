//! Memory figures of a process, from `/proc/<pid>/status` (Linux).

/// A `kB` field of a `/proc/<pid>/status` text, such as `VmRSS` (resident
/// set size) or `VmHWM` (its peak), in KiB.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        if name != field {
            return None;
        }
        let mut words = rest.split_whitespace();
        let value = words.next()?.parse().ok()?;
        match words.next() {
            Some("kB") | None => Some(value),
            Some(_) => None,
        }
    })
}

/// Reads `field` of process `pid`, in MiB.
pub fn read_mib(pid: u32, field: &str) -> Result<f64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let kib = status_field_kib(&text, field).ok_or_else(|| format!("no {field} in {path}"))?;
    Ok(kib as f64 / 1024.0)
}

/// The 1-minute load average of a `/proc/loadavg` text.
pub fn parse_load_average(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The 1-minute load average of the machine (runnable tasks, this run's
/// included): on a shared machine, what the figures competed with.
pub fn load_average_1m() -> Option<f64> {
    parse_load_average(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tguichet\nState:\tS (sleeping)\nVmPeak:\t  712345 kB\n\
                          VmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\nThreads:\t5\n";

    #[test]
    fn fields_are_read_in_kib() {
        assert_eq!(status_field_kib(STATUS, "VmRSS"), Some(20480));
        assert_eq!(status_field_kib(STATUS, "VmHWM"), Some(30720));
        assert_eq!(status_field_kib(STATUS, "Threads"), Some(5));
    }

    #[test]
    fn missing_or_odd_fields_are_none() {
        assert_eq!(status_field_kib(STATUS, "VmSwap"), None);
        assert_eq!(status_field_kib(STATUS, "Vm"), None);
        assert_eq!(status_field_kib(STATUS, "State"), None);
        assert_eq!(status_field_kib("VmRSS:\t12 MB\n", "VmRSS"), None);
        assert_eq!(status_field_kib("", "VmRSS"), None);
    }

    #[test]
    fn the_load_average_is_the_first_field() {
        assert_eq!(
            parse_load_average("9.23 9.99 7.26 12/288 7999\n"),
            Some(9.23)
        );
        assert_eq!(parse_load_average(""), None);
        assert_eq!(parse_load_average("x 1 2"), None);
    }

    #[test]
    fn our_own_process_has_a_resident_set() {
        let mib = read_mib(std::process::id(), "VmRSS").unwrap();
        assert!(mib > 0.0);
    }
}
