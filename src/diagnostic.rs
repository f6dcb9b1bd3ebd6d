//! Problems in user files, located by file, line, column and key: errors (the file is
//! refused) and warnings (harmless, printed by `check`, `render` and `play`, never fatal).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Most diagnostics kept for one file; past it they are counted and summed up in one line,
/// so a file with a million bad entries costs neither memory nor time to report.
pub const MAX_DIAGNOSTICS: usize = 100;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// Harmless, but probably not what was meant; the file is used.
    Warning,
}

/// One problem in a patch or performance file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// File the problem is in.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// Dotted key path, e.g. `score.sections[1].chords[2]`.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Diagnostic {
    /// An error about the file as a whole (e.g. it cannot be read), at line 0.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: message.into(),
            severity: Severity::Error,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() {
            "(document)"
        } else {
            &self.key
        };
        let (file, line, column) = (self.file.display(), self.line, self.column);
        match self.severity {
            Severity::Error => write!(f, "{file}:{line}:{column}: {key}: {}", self.message),
            Severity::Warning => write!(
                f,
                "{file}:{line}:{column}: warning: {key}: {}",
                self.message
            ),
        }
    }
}

/// Every problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one source text.
pub struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    /// Errors and warnings kept so far (at most [`MAX_DIAGNOSTICS`]).
    found: Vec<Diagnostic>,
    /// Errors found, shown or not.
    errors: usize,
    /// Diagnostics past [`MAX_DIAGNOSTICS`], counted only.
    unshown: usize,
}

impl<'a> Reporter<'a> {
    /// A reporter for `text` read from `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            found: Vec::new(),
            errors: 0,
            unshown: 0,
        }
    }

    /// Line and column (from 1, column in characters) of a byte offset.
    pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let before = &text[..text.floor_char_boundary_compat(offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn push(&mut self, span: Range<usize>, key: String, message: String, severity: Severity) {
        if severity == Severity::Error {
            self.errors += 1;
        }
        if self.found.len() >= MAX_DIAGNOSTICS {
            self.unshown += 1;
            return;
        }
        let (line, column) = Self::line_column(self.text, span.start);
        self.found.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            key,
            message,
            severity,
        });
    }

    /// Records a problem at a span: the file is refused.
    pub fn error(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(span, key.into(), message.into(), Severity::Error);
    }

    /// Records a harmless oddity at a span: the file is still used.
    pub fn warning(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(span, key.into(), message.into(), Severity::Warning);
    }

    /// Whether any error (not a warning) was found.
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// Takes over what another reporter found (on another text of the same file).
    pub fn absorb(&mut self, other: Reporter) {
        self.errors += other.errors;
        self.unshown += other.unshown;
        for d in other.found {
            if self.found.len() < MAX_DIAGNOSTICS {
                self.found.push(d);
            } else {
                self.unshown += 1;
            }
        }
    }

    /// Where `needle` first occurs in the text.
    pub fn find(&self, needle: &str) -> Option<usize> {
        self.text.find(needle)
    }

    /// The source text of a span.
    pub fn snippet(&self, span: Range<usize>) -> &str {
        self.text.get(span).unwrap_or("")
    }

    /// Converts a TOML syntax error, naming the key from the source where it can.
    pub fn toml_error(&mut self, err: &toml::de::Error) {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().to_string();
        let key = key_at(self.text, span.start);
        self.error(span, key, message);
    }

    /// Parses `self.text` into `T`, reporting a syntax or schema error with the exact key
    /// path (e.g. `archetypes[1].colour`).
    pub fn deserialize<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        self.deserialize_view(self.text, |offset| offset)
    }

    /// Parses `view`, a text made from this file's (e.g. with some tables blanked out), into
    /// `T`; `to_file` maps an offset in `view` to one in the file. Spans inside the value
    /// stay offsets in `view`.
    pub fn deserialize_view<T: serde::de::DeserializeOwned>(
        &mut self,
        view: &str,
        to_file: impl Fn(usize) -> usize,
    ) -> Option<T> {
        let map = |span: Range<usize>| to_file(span.start)..to_file(span.end);
        let de = match toml::Deserializer::parse(view) {
            Ok(de) => de,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let key = key_at(view, span.start);
                self.error(map(span), key, e.message().trim().to_string());
                return None;
            }
        };
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Some(v),
            Err(e) => {
                let path = schema_path(&e);
                let err = e.into_inner();
                let span = err.span().unwrap_or(0..0);
                let key = if path.is_empty() {
                    key_at(view, span.start)
                } else {
                    path
                };
                self.error(map(span), key, err.message().trim().to_string());
                None
            }
        }
    }

    /// Parses one table's body, `self.text[body]`, as a document of its own into `T` (so a
    /// long file never becomes one tree in memory). Problems are located in the whole text
    /// and keyed under `prefix` (e.g. `events[12]`); a missing field is reported at
    /// `header`, the table's header.
    pub fn deserialize_part<T: serde::de::DeserializeOwned>(
        &mut self,
        body: Range<usize>,
        prefix: &str,
        header: Range<usize>,
    ) -> Option<T> {
        let Some(part) = self.text.get(body.clone()) else {
            self.error(header, prefix, "the table's text is not readable");
            return None;
        };
        let shift = |span: Range<usize>| span.start + body.start..span.end + body.start;
        let de = match toml::Deserializer::parse(part) {
            Ok(de) => de,
            Err(e) => {
                let span = shift(e.span().unwrap_or(0..0));
                let key = match line_key(self.text, span.start) {
                    Some(k) => format!("{prefix}.{k}"),
                    None => prefix.to_string(),
                };
                self.error(span, key, e.message().trim().to_string());
                return None;
            }
        };
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Some(v),
            Err(e) => {
                let path = schema_path(&e);
                let err = e.into_inner();
                let (key, span) = match (path.is_empty(), err.span()) {
                    // a problem with the table as a whole (a missing field): at its header
                    (true, _) | (false, None) => (format!("{prefix}{}", dotted(&path)), header),
                    (false, Some(span)) => (format!("{prefix}.{path}"), shift(span)),
                };
                self.error(span, key, err.message().trim().to_string());
                None
            }
        }
    }

    /// Finishes: the warnings when no error was found, else every diagnostic (errors
    /// first), with a last line counting those not shown.
    pub fn finish(self) -> Result<Vec<Diagnostic>, Diagnostics> {
        let Reporter {
            file,
            mut found,
            errors,
            unshown,
            ..
        } = self;
        if unshown > 0 {
            found.push(Diagnostic {
                line: 1,
                column: 1,
                key: String::new(),
                message: format!(
                    "{unshown} more problems not shown (at most {MAX_DIAGNOSTICS} are listed)"
                ),
                severity: if errors > 0 {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                ..Diagnostic::whole_file(file, "")
            });
        }
        if errors == 0 {
            return Ok(found);
        }
        found.sort_by_key(|d| d.severity == Severity::Warning);
        Err(Diagnostics(found))
    }
}

/// A serde path as a key, `""` for the document itself.
fn schema_path<E>(e: &serde_path_to_error::Error<E>) -> String {
    // a value read through `toml::Spanned` has a private inner field in its path
    let path = e
        .path()
        .to_string()
        .replace(".$__serde_spanned_private_value", "")
        .replace("$__serde_spanned_private_value", "");
    if path == "." {
        String::new()
    } else {
        path
    }
}

fn dotted(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(".{path}")
    }
}

/// The `key` of a `key = value` line holding a byte offset.
fn line_key(text: &str, offset: usize) -> Option<String> {
    let offset = text.floor_char_boundary_compat(offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    if line.starts_with('[') {
        return None;
    }
    line.split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty())
}

/// Best-effort name of the key at a byte offset: the `key =` on that line, inside the
/// nearest `[table]` header above it.
fn key_at(text: &str, offset: usize) -> String {
    let offset = text.floor_char_boundary_compat(offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = if line.starts_with('[') {
        None
    } else {
        line.split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
    };
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (Some(t), None) => t,
        (None, Some(k)) => k,
        (None, None) => String::new(),
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(Reporter::line_column(text, 0), (1, 1));
        let offset = text.find('"').unwrap();
        assert_eq!(Reporter::line_column(text, offset), (2, 6));
    }

    #[test]
    fn key_names_come_from_the_table_and_line() {
        let text = "[score]\ntempo_bpm = \"fast\"\n";
        let offset = text.find("\"fast").unwrap();
        assert_eq!(key_at(text, offset), "score.tempo_bpm");
    }
}
