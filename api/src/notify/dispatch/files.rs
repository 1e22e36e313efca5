//! File delivery: one file per message, written so that a reader never
//! sees half of it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// `<YYYYMMDDTHHMMSS>-<message id>.<extension>`: files sort by delivery
/// time and never collide (the id is unique). Characters other than ASCII
/// letters, digits, `-` and `_` in the id are replaced, so the name never
/// leaves the directory.
pub(super) fn file_name(now: DateTime<Utc>, message_id: &str, extension: &str) -> String {
    let safe_id: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{safe_id}.{extension}", now.format("%Y%m%dT%H%M%S"))
}

/// Writes `bytes` to `dir/name`: the directory is created, the content
/// goes to a hidden temporary file first which is then renamed, so the
/// final name only ever points to a complete file.
pub(super) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    let written = fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        // Best effort: a leftover hidden temporary file is harmless.
        let _ = fs::remove_file(&temp);
        return Err(format!("cannot write {}: {e}", temp.display()));
    }
    fs::rename(&temp, &target).map_err(|e| {
        let _ = fs::remove_file(&temp);
        format!(
            "cannot rename {} to {}: {e}",
            temp.display(),
            target.display()
        )
    })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_sort_by_time_and_stay_in_the_directory() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 5, 7)
            .single()
            .unwrap();
        assert_eq!(
            file_name(now, "msg_abc", "eml"),
            "20261122T090507-msg_abc.eml"
        );
        assert_eq!(
            file_name(now, "../x/y", "json"),
            "20261122T090507-___x_y.json"
        );
    }
}
