//! One error type for every user-facing failure: a single line that names
//! the file or field and what was expected.

use std::fmt;

/// A user-facing error: printed as one line, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never let a multi-line message through: the contract is one line.
        let one_line: String = self
            .0
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        f.write_str(&one_line)
    }
}

impl std::error::Error for Error {}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Returns early with a formatted [`Error`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error(format!($($arg)*)))
    };
}

/// Builds an [`Error`] from a format string.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::error::Error(format!($($arg)*))
    };
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, "read", &e))
}

/// Reads a whole UTF-8 text file, naming it in the error.
pub fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = read_file(path)?;
    String::from_utf8(bytes).map_err(|_| Error(format!("{}: expected UTF-8 text", path.display())))
}

/// Writes a whole file, naming it in the error.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| io_error(path, "write", &e))
}

/// Creates a directory and its parents, naming it in the error.
pub fn create_dir(path: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io_error(path, "create directory", &e))
}

/// An I/O error as one line naming the path.
pub fn io_error(path: &std::path::Path, what: &str, e: &std::io::Error) -> Error {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Error(format!("{}: cannot {what}: {reason}", path.display()))
}

/// A TOML error as one line: `FILE:LINE:COL: message`.
pub fn toml_error(path: &std::path::Path, text: &str, e: &toml::de::Error) -> Error {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            Error(format!("{}:{line}:{col}: {message}", path.display()))
        }
        None => Error(format!("{}: {message}", path.display())),
    }
}
