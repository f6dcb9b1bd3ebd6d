//! The terminal side of the status view: the alternate screen, entered once and restored on
//! every way out (normal end, Ctrl-C, error return, panic).

use std::io::{self, Stdout, Write};

use crossterm::{cursor, queue, style, terminal};

/// The alternate screen, while it is up. Dropping it restores the terminal.
pub struct Screen {
    out: Stdout,
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
        Ok(Screen { out })
    }

    /// Draws `text` (lines) from the top left, clearing what the previous frame left.
    pub fn draw(&mut self, text: &str) -> io::Result<()> {
        let out = &mut self.out;
        queue!(out, cursor::MoveTo(0, 0))?;
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                queue!(out, cursor::MoveToNextLine(1))?;
            }
            queue!(
                out,
                style::Print(line),
                terminal::Clear(terminal::ClearType::UntilNewLine)
            )?;
        }
        queue!(
            out,
            cursor::MoveToNextLine(1),
            terminal::Clear(terminal::ClearType::FromCursorDown)
        )?;
        out.flush()
    }

    /// The terminal's size in (columns, rows); 80x24 when it cannot tell (or says 0).
    pub fn size() -> (usize, usize) {
        match terminal::size() {
            Ok((w, h)) if w > 0 && h > 0 => (w as usize, h as usize),
            _ => (80, 24),
        }
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
