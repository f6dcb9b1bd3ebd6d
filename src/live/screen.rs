//! The terminal side of the status view: a ratatui terminal on the alternate screen, entered
//! once and restored on every way out (normal end, Ctrl-C, error return, panic). ratatui
//! diffs each frame against the last one and writes only the changed cells.

use std::io::{self, Stdout, Write};

use std::time::Duration;

use crossterm::event::{self, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, queue, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use tapestry::console::Key;
use tapestry::status_view::{self, Selection, Snapshot};

/// The alternate screen, while it is up. Dropping it restores the terminal.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Switches stdout to the alternate screen, hides the cursor and reads keys one by one
    /// (raw mode: Ctrl-C arrives as a key, which quits).
    pub fn enter() -> io::Result<Screen> {
        terminal::enable_raw_mode()?;
        let mut out = io::stdout();
        queue!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        out.flush()?;
        // a panic must not leave the performer's terminal on the alternate screen
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let terminal = Terminal::new(CrosstermBackend::new(out)).inspect_err(|_| restore())?;
        Ok(Screen { terminal })
    }

    /// Draws the view at the terminal's current size (ratatui follows a resize).
    pub fn draw(&mut self, snapshot: &Snapshot, selection: &Selection) -> io::Result<()> {
        self.terminal
            .draw(|frame| status_view::draw(frame, snapshot, selection))
            .map(|_| ())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        if !std::thread::panicking() {
            let _ = std::panic::take_hook();
        }
    }
}

impl Screen {
    /// The keys pressed since the last call, without waiting.
    pub fn keys(&mut self) -> Vec<Key> {
        let mut keys = Vec::new();
        // bounded: a terminal pasting a flood of keys is read a screenful at a time
        while keys.len() < MAX_KEYS_PER_READ && event::poll(Duration::ZERO).unwrap_or(false) {
            let Ok(event::Event::Key(k)) = event::read() else {
                continue;
            };
            if k.kind == KeyEventKind::Release {
                continue;
            }
            keys.push(match k.code {
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
                KeyCode::Char(c) => Key::Char(c),
                KeyCode::Up => Key::Up,
                KeyCode::Down => Key::Down,
                KeyCode::Esc => Key::Esc,
                _ => continue,
            });
        }
        keys
    }
}

/// Keys taken in one read.
const MAX_KEYS_PER_READ: usize = 64;

/// Leaves the alternate screen, shows the cursor and gives the terminal its line mode back.
fn restore() {
    let mut out = io::stdout();
    let _ = queue!(out, cursor::Show, terminal::LeaveAlternateScreen);
    let _ = out.flush();
    let _ = terminal::disable_raw_mode();
}
