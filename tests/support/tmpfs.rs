//! A small filesystem for out-of-space tests: a tmpfs mounted on a path, unmounted on drop. Mounting needs
//! root (CI runs as root); `is_root` lets a test say so and stop. Included by `tests/disk_full.rs` and
//! `store/tests/enospc.rs` (`#[path]`), so both fill the same kind of disk.
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs mounted on `path`, unmounted on drop.
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(crate) fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs on {}", path.display());
        Tmpfs(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
