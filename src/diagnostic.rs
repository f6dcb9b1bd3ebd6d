//! Errors in user files, located by file, line, column and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

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
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            if self.key.is_empty() {
                "(document)"
            } else {
                &self.key
            },
            self.message
        )
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
    /// Problems so far.
    pub found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    /// A reporter for `text` read from `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            found: Vec::new(),
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

    /// Records a problem at a span.
    pub fn error(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = Self::line_column(self.text, span.start);
        self.found.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
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
        let de = match toml::Deserializer::parse(self.text) {
            Ok(de) => de,
            Err(e) => {
                self.toml_error(&e);
                return None;
            }
        };
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Some(v),
            Err(e) => {
                // a value read through `toml::Spanned` has a private inner field in its path
                let path = e
                    .path()
                    .to_string()
                    .replace(".$__serde_spanned_private_value", "");
                let err = e.into_inner();
                let span = err.span().unwrap_or(0..0);
                let key = if path == "." || path.is_empty() {
                    key_at(self.text, span.start)
                } else {
                    path
                };
                self.error(span, key, err.message().trim().to_string());
                None
            }
        }
    }

    /// Finishes: `Ok` when nothing was found.
    pub fn finish(self) -> Result<(), Diagnostics> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(self.found))
        }
    }
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
