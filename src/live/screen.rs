//! The terminal side of the status view: a ratatui terminal on the alternate screen, entered
//! once and restored on every way out (normal end, Ctrl-C, error return, panic). ratatui
//! diffs each frame against the last one and writes only the changed cells.

use std::io::{self, Stdout, Write};

use crossterm::{cursor, queue, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use tapestry::status_view::{self, Selection, Snapshot};

/// The alternate screen, while it is up. Dropping it restores the terminal.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Switches stdout to the alternate screen and hides the cursor.
    pub fn enter() -> io::Result<Screen> {
        let mut out = io::stdout();
        queue!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
        out.flush()?;
        // a panic must not leave the performer's terminal on the alternate screen
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
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

/// Leaves the alternate screen and shows the cursor again.
fn restore() {
    let mut out = io::stdout();
    let _ = queue!(out, cursor::Show, terminal::LeaveAlternateScreen);
    let _ = out.flush();
}
