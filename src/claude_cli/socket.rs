//! Where the CLI service listens: a Unix socket in a private directory of its own.

use std::path::Path;

/// A private directory for the service's socket (mode 0700: only this user may connect).
pub fn socket_path() -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "llm-sidecar-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir.join("cli.sock"))
}

/// Remove the socket's directory (at exit).
pub fn remove_socket(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
