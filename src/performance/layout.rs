//! The top-level tables of a TOML document, found without parsing it: a performance is read
//! one `[[events]]` table at a time, so a long recording never becomes one tree in memory.
//!
//! The scanner knows just enough TOML to tell a table header from a `[` inside a value:
//! strings (basic, literal, multi-line), comments, and the nesting of arrays and inline
//! tables. Whatever it cannot make sense of stays inside a table's text, where the TOML
//! parser reports it.

use std::ops::Range;

/// One top-level table: `[name]` or `[[name]]` and the text up to the next table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Start of the header's line (so the table's text starts at a line start).
    pub start: usize,
    /// The header, brackets included.
    pub header: Range<usize>,
    /// End of the table's text: the next table's line start, or the end of the document.
    pub end: usize,
    /// Whether this is an `[[events]]` entry.
    pub events: bool,
}

impl Table {
    /// The table's keys and values: after the header, up to the next table.
    pub fn body(&self) -> Range<usize> {
        self.header.end..self.end
    }
}

/// The tables of a document, in order; the text before the first one is the preamble
/// (`0..first.start`).
pub struct Tables<'a> {
    text: &'a str,
    next: Option<(usize, usize)>,
    unclosed: Option<usize>,
}

impl<'a> Tables<'a> {
    /// Scans `text` lazily.
    pub fn new(text: &'a str) -> Tables<'a> {
        let (next, unclosed) = find_header(text.as_bytes(), 0, true);
        Tables {
            text,
            next,
            unclosed,
        }
    }

    /// End of the preamble: where the first table starts.
    pub fn preamble_end(text: &str) -> usize {
        find_header(text.as_bytes(), 0, true)
            .0
            .map_or(text.len(), |(line, _)| line)
    }

    /// Once the tables are all read: where a value (array, inline table or multi-line string)
    /// opened that never closed, so that the rest of the text became part of it.
    pub fn unclosed(&self) -> Option<usize> {
        self.unclosed
    }
}

impl Iterator for Tables<'_> {
    type Item = Table;

    fn next(&mut self) -> Option<Table> {
        let bytes = self.text.as_bytes();
        let (start, bracket) = self.next?;
        let (header_end, events) = read_header(bytes, bracket);
        (self.next, self.unclosed) = find_header(bytes, header_end, false);
        Some(Table {
            start,
            header: bracket..header_end,
            end: self.next.map_or(bytes.len(), |(line, _)| line),
            events,
        })
    }
}

/// The next table header at or after `from`: (its line's start, its `[`); at the end of the
/// text, where a value that never closed was opened, if one was.
type Found = (Option<(usize, usize)>, Option<usize>);

fn find_header(b: &[u8], from: usize, at_line_start: bool) -> Found {
    let mut i = from;
    let mut depth = 0usize;
    let mut opened = None;
    let mut line_start = at_line_start.then_some(from);
    while i < b.len() {
        if let (Some(line), 0) = (line_start, depth) {
            let mut j = i;
            while j < b.len() && matches!(b[j], b' ' | b'\t') {
                j += 1;
            }
            if b.get(j) == Some(&b'[') {
                return (Some((line, j)), None);
            }
            i = j;
            line_start = None;
            continue;
        }
        match b[i] {
            b'\n' => {
                line_start = Some(i + 1);
                i += 1;
            }
            b'#' => i = line_end(b, i),
            b'"' | b'\'' => {
                let end = string_end(b, i);
                if end >= b.len() && b[i..].starts_with(&[b[i]; 3]) {
                    return (None, Some(opened.unwrap_or(i)));
                }
                i = end;
            }
            b'[' | b'{' => {
                if depth == 0 {
                    opened = Some(i);
                }
                depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            _ => {
                line_start = None;
                i += 1;
            }
        }
    }
    (None, if depth > 0 { opened } else { None })
}

/// Reads a header starting at its `[`: where it ends and whether it is `[[events]]`.
fn read_header(b: &[u8], at: usize) -> (usize, bool) {
    let array = b.get(at + 1) == Some(&b'[');
    let name_start = at + if array { 2 } else { 1 };
    let mut i = name_start;
    while i < b.len() && !matches!(b[i], b']' | b'\n') {
        i = if matches!(b[i], b'"' | b'\'') {
            string_end(b, i)
        } else {
            i + 1
        };
    }
    let name = std::str::from_utf8(&b[name_start..i.min(b.len())]).unwrap_or("");
    let closing = if array { b"]]".as_slice() } else { b"]" };
    let closed = b[i.min(b.len())..].starts_with(closing);
    let end = if closed { i + closing.len() } else { i };
    let events = array && closed && matches!(name.trim(), "events" | "\"events\"" | "'events'");
    (end, events)
}

/// Index of the `\n` ending the line at `i` (or the end of the text).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |n| i + n)
}

/// Index just past the string starting at `i` (a quote). A single-line string also ends at
/// the end of its line (an unterminated string is the parser's to report).
fn string_end(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let basic = quote == b'"';
    if b[i..].starts_with(&[quote; 3]) {
        let mut j = i + 3;
        while j < b.len() {
            if basic && b[j] == b'\\' {
                j += 2;
            } else if b[j..].starts_with(&[quote; 3]) {
                // a closing run may carry up to two quotes of content before it
                let mut end = j + 3;
                while end < b.len() && b[end] == quote && end < j + 5 {
                    end += 1;
                }
                return end;
            } else {
                j += 1;
            }
        }
        return b.len();
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b'\n' {
        if basic && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            return j + 1;
        } else {
            j += 1;
        }
    }
    j.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, bool)> {
        Tables::new(text)
            .map(|t| (text[t.header.clone()].to_string(), t.events))
            .collect()
    }

    #[test]
    fn headers_are_found_at_line_starts_only() {
        let text = "version = 1\nx = [\n  [1, 2],\n  [3],\n]\n[[events]]\ntype = \"a [b]\"\n  [[ events ]] # c\ns = \"\"\"\n[[events]]\n\"\"\"\n[session]\nend_sample = 3\n";
        assert_eq!(
            names(text),
            vec![
                ("[[events]]".to_string(), true),
                ("[[ events ]]".to_string(), true),
                ("[session]".to_string(), false),
            ]
        );
        assert_eq!(Tables::preamble_end(text), text.find("[[events]]").unwrap());
    }

    #[test]
    fn tables_cover_the_text_from_their_line_start() {
        let text = "a = 1\n  [[events]]\nb = 2\n['events']\nc = 'x # y'\n[[\"events\"]]";
        let tables: Vec<Table> = Tables::new(text).collect();
        assert_eq!(tables.len(), 3);
        assert_eq!(tables[0].start, 6);
        assert_eq!(tables[0].end, tables[1].start);
        assert_eq!(&text[tables[0].body()], "\nb = 2\n");
        assert!(tables[0].events && !tables[1].events && tables[2].events);
        assert_eq!(tables[2].end, text.len());
    }

    #[test]
    fn a_value_that_never_closes_is_found() {
        let text = "a = 1\n[[events]]\nx = [1,\n[[events]]\ny = 2\n";
        let mut tables = Tables::new(text);
        assert_eq!(tables.by_ref().count(), 1);
        assert_eq!(tables.unclosed(), Some(text.find("[1,").unwrap()));
        let text = "a = \"\"\"\n[[events]]\n";
        let mut tables = Tables::new(text);
        assert_eq!(tables.by_ref().count(), 0);
        assert_eq!(tables.unclosed(), Some(4));
        let mut tables = Tables::new("a = [1]\n[b]\n");
        assert_eq!(tables.by_ref().count(), 1);
        assert_eq!(tables.unclosed(), None);
    }

    #[test]
    fn torn_and_odd_text_never_panics() {
        for text in [
            "[",
            "[[",
            "[[events",
            "x = \"\"\"",
            "x = '''\n",
            "\"\\",
            "x = [\n[a]",
            "#",
        ] {
            let _ = Tables::new(text).count();
        }
    }
}
