//! Drawing the plot with plotters into an RGB buffer: one panel per row, all on the same
//! time axis, legends in the right margin.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::spectrogram::{BANDS, FLOOR_DB, MIN_HZ};
use super::{PlotError, PlotLayout};
use crate::analysis::LOUDNESS_FLOOR_LUFS;
use crate::timeline::{EventKind, Timeline};

/// DejaVu Sans, cut down to Latin (licence: `src/plot/LICENSE-DejaVu.txt`).
static FONT_REGULAR: &[u8] = include_bytes!("DejaVuSans-Latin.ttf");
/// DejaVu Sans Bold, cut down the same way.
static FONT_BOLD: &[u8] = include_bytes!("DejaVuSans-Bold-Latin.ttf");
/// The family name the embedded fonts are registered under.
const FONT: &str = "tapestry-sans";

/// Dynamic range of the spectrogram's colour scale, in dB below its loudest cell.
pub const SPECTROGRAM_RANGE_DB: f32 = 80.0;
/// The spectrogram's colour scale tops out at its loudest cell, but not below this.
pub const SPECTROGRAM_MIN_TOP_DB: f32 = -60.0;
/// Lowest loudness the loudness panel shows (quieter values sit on its floor).
pub const LOUDNESS_MIN_LUFS: f32 = -60.0;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
/// Every mood dimension's name and line colour.
type MoodColors = Vec<(String, [u8; 3])>;

const BACKGROUND: RGBColor = RGBColor(250, 250, 247);
const INK: RGBColor = RGBColor(35, 35, 40);
const GRID: RGBColor = RGBColor(222, 222, 218);
const JOIN: RGBColor = RGBColor(30, 140, 60);
const LEAVE: RGBColor = RGBColor(200, 50, 40);
const REFUSED: RGBColor = RGBColor(230, 140, 0);
const PRESENT: RGBColor = RGBColor(205, 210, 220);
const MOMENTARY: RGBColor = RGBColor(125, 165, 225);
const SHORT_TERM: RGBColor = RGBColor(20, 55, 140);
/// Section bands (ColorBrewer Set3), by section index.
const SECTION_COLORS: [RGBColor; 8] = [
    RGBColor(141, 211, 199),
    RGBColor(255, 237, 160),
    RGBColor(190, 186, 218),
    RGBColor(251, 128, 114),
    RGBColor(128, 177, 211),
    RGBColor(253, 180, 98),
    RGBColor(179, 222, 105),
    RGBColor(252, 205, 229),
];
/// Mood lines (ColorBrewer Set1): energy, tension, brightness, unity, then the others.
const MOOD_COLORS: [RGBColor; 8] = [
    RGBColor(228, 26, 28),
    RGBColor(152, 78, 163),
    RGBColor(255, 127, 0),
    RGBColor(55, 126, 184),
    RGBColor(77, 175, 74),
    RGBColor(166, 86, 40),
    RGBColor(247, 129, 191),
    RGBColor(120, 120, 120),
];
/// The spectrogram's colour ramp, quiet to loud (after matplotlib's "inferno", CC0).
const RAMP: [(u8, u8, u8); 10] = [
    (0, 0, 4),
    (27, 12, 66),
    (75, 12, 107),
    (120, 28, 109),
    (165, 44, 96),
    (207, 68, 70),
    (237, 105, 37),
    (251, 154, 6),
    (247, 208, 60),
    (252, 255, 164),
];

/// What the drawing needs, gathered by the builder.
pub(super) struct PlotData<'a> {
    pub timeline: &'a Timeline,
    pub duration_secs: f64,
    /// Per column, the mean power of every band in dB (lowest band first).
    pub spectrogram: Vec<[f32; BANDS]>,
    pub max_hz: f32,
    /// Per column: momentary minimum, momentary maximum, short-term (LUFS).
    pub loudness: Vec<(f32, f32, f32)>,
    pub target_lufs: Option<f32>,
}

/// Sizes that scale with the picture's width.
#[derive(Clone, Copy)]
struct Geometry {
    left: u32,
    right: u32,
    font: f64,
    gap: u32,
    /// Width of data lines.
    line: u32,
}

fn geometry(width: u32) -> Geometry {
    let k = width as f64 / 1600.0;
    Geometry {
        left: (92.0 * k).max(64.0) as u32,
        right: (230.0 * k).max(150.0) as u32,
        font: (15.0 * k).max(12.0),
        gap: (8.0 * k).max(4.0) as u32,
        line: (2.0 * k).round().max(2.0) as u32,
    }
}

/// Columns of the time axis for a picture `width` wide.
pub(super) fn plot_columns(width: u32) -> usize {
    let g = geometry(width);
    width.saturating_sub(g.left + g.right).max(1) as usize
}

/// Height of a picture `width` wide.
pub(super) fn height_for(width: u32) -> u32 {
    (width * 5 / 8).max(super::MIN_HEIGHT)
}

fn error<E: std::fmt::Display>(e: E) -> PlotError {
    PlotError::Draw(e.to_string())
}

fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // the bytes are the fonts above; a failure shows as a missing-font draw error.
        // Plotters' default family ("sans-serif") gets them too, for any default style.
        for family in [FONT, "sans-serif"] {
            let _ = register_font(family, FontStyle::Normal, FONT_REGULAR);
            let _ = register_font(family, FontStyle::Bold, FONT_BOLD);
        }
    });
}

fn text_style(size: f64, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(color)
}

fn bold_style(size: f64, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font().style(FontStyle::Bold)).color(color)
}

/// Draws the whole picture into `rgb` (width × height × 3 bytes).
pub(super) fn draw(
    rgb: &mut [u8],
    width: u32,
    height: u32,
    data: &PlotData,
) -> Result<PlotLayout, PlotError> {
    register_fonts();
    let g = geometry(width);
    let root = BitMapBackend::with_buffer(rgb, (width, height)).into_drawing_area();
    root.fill(&BACKGROUND).map_err(error)?;
    let h = height as f64;
    let title = (0.055 * h) as i32;
    let axis = (0.05 * h).max(g.font * 3.2) as i32;
    let body = height as i32 - title - axis;
    // sections, participants, spectrogram, loudness, mood (+ time axis)
    let shares = [0.07, 0.13, 0.36, 0.19, 0.25];
    let mut breaks = Vec::with_capacity(shares.len());
    let mut y = title as f64;
    for share in &shares[..shares.len() - 1] {
        y += share * body as f64;
        breaks.push(y.round() as i32);
    }
    let mut rows = root.split_by_breakpoints::<i32, i32, _, _>([], [title]);
    let panels = rows
        .pop()
        .expect("two rows")
        .split_by_breakpoints::<i32, i32, _, _>(
            [],
            breaks.iter().map(|b| b - title).collect::<Vec<_>>(),
        );
    draw_title(&rows[0], data, g)?;
    let sections_y = draw_sections(&panels[0], data, g)?;
    let participants_y = draw_participants(&panels[1], data, g)?;
    let (spectrogram_y, time_x) = draw_spectrogram(&panels[2], data, g)?;
    let loudness_y = draw_loudness(&panels[3], data, g)?;
    let (mood_y, mood_colors) = draw_mood(&panels[4], data, g, axis as u32)?;
    root.present().map_err(error)?;
    Ok(PlotLayout {
        width,
        height,
        time_x,
        sections_y,
        participants_y,
        spectrogram_y,
        loudness_y,
        mood_y,
        mood_colors,
    })
}

fn draw_title(area: &Area, data: &PlotData, g: Geometry) -> Result<(), PlotError> {
    let t = data.timeline;
    let (w, h) = area.dim_in_pixel();
    let y = h as i32 / 2 + g.gap as i32 / 2;
    let title = if t.piece().is_empty() {
        "Tapestry render"
    } else {
        t.piece()
    };
    area.draw(&Text::new(
        title.to_string(),
        (g.left as i32, y),
        bold_style(g.font * 1.45, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(error)?;
    let joins = t
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Join { .. }))
        .count();
    let details = format!(
        "{} · {:.1} kHz · {} · {}",
        clock(data.duration_secs),
        t.sample_rate() as f64 / 1000.0,
        counted(t.sections().len(), "section"),
        counted(joins, "join"),
    );
    area.draw(&Text::new(
        details,
        ((w - g.right) as i32, y),
        text_style(g.font, &INK).pos(Pos::new(HPos::Right, VPos::Center)),
    ))
    .map_err(error)
}

/// "1 join", "2 joins".
fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A time in seconds as m:ss.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Grid times: multiples of a step giving about ten labels.
fn time_ticks(duration_secs: f64) -> Vec<f64> {
    const STEPS: [f64; 15] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        7200.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| duration_secs / s <= 12.0)
        .unwrap_or(duration_secs / 10.0);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|&t| t <= duration_secs + 1e-9)
        .collect()
}

/// A chart on one panel with the shared time axis and the given y range.
fn panel<'a, Y: plotters::coord::ranged1d::AsRangedCoord>(
    area: &Area<'a>,
    data: &PlotData,
    g: Geometry,
    y: Y,
    bottom: u32,
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y::CoordDescType>,
    >,
    PlotError,
> {
    let x = 0.0..data.duration_secs.max(1e-3);
    ChartBuilder::on(area)
        .margin_top(g.gap)
        .margin_right(g.right)
        .set_label_area_size(LabelAreaPosition::Left, g.left)
        .set_label_area_size(LabelAreaPosition::Bottom, bottom)
        .build_cartesian_2d(x, y)
        .map_err(error)
}

/// The pixel rows of a chart's plotting area.
fn rows_of<DB: DrawingBackend, CT: CoordTranslate>(area: &DrawingArea<DB, CT>) -> Range<i32> {
    area.get_pixel_range().1
}

/// Section starts after the first, in seconds.
fn boundaries(t: &Timeline) -> Vec<f64> {
    t.sections()
        .iter()
        .skip(1)
        .map(|s| s.start_seconds)
        .collect()
}

/// A panel's axis title, turned upright along the left edge.
fn axis_title(area: &Area, g: Geometry, title: &str) -> Result<(), PlotError> {
    let (_, h) = area.dim_in_pixel();
    let style = text_style(g.font * 0.85, &INK)
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(
        title.to_string(),
        ((g.font * 0.5) as i32, (h as i32 + g.gap as i32) / 2),
        style,
    ))
    .map_err(error)
}

/// The line colour of every mood dimension: the core four keep theirs in every piece
/// (energy red, tension purple, brightness orange, unity blue), the others take the rest
/// in order.
fn mood_colors(names: impl Iterator<Item = String>) -> Vec<RGBColor> {
    const CORE: [&str; 4] = ["energy", "tension", "brightness", "unity"];
    let mut others = 0;
    names
        .map(|name| match CORE.iter().position(|c| *c == name) {
            Some(i) => MOOD_COLORS[i],
            None => {
                others += 1;
                MOOD_COLORS[CORE.len() + (others - 1) % (MOOD_COLORS.len() - CORE.len())]
            }
        })
        .collect()
}

/// A legend in the right margin: a bold title and (swatch, label) entries.
fn legend(
    area: &Area,
    g: Geometry,
    title: &str,
    entries: &[(Swatch, String)],
) -> Result<(), PlotError> {
    let (w, _) = area.dim_in_pixel();
    let x = (w - g.right) as i32 + (g.font * 1.2) as i32;
    let line = (g.font * 1.3) as i32;
    let mut y = g.gap as i32 + line / 2;
    area.draw(&Text::new(
        title.to_string(),
        (x, y),
        bold_style(g.font, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(error)?;
    let swatch_w = (g.font * 1.6) as i32;
    let (_, height) = area.dim_in_pixel();
    for (swatch, label) in entries {
        y += line;
        if y + line / 2 > height as i32 {
            break;
        }
        let (x0, x1) = (x, x + swatch_w);
        let half = (g.font * 0.35) as i32;
        match *swatch {
            Swatch::Line(c, width) => area.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                c.stroke_width(width),
            )),
            Swatch::Dashed(c) => area
                .draw(&PathElement::new(
                    vec![(x0, y), (x0 + swatch_w / 3, y)],
                    c.stroke_width(g.line),
                ))
                .and_then(|_| {
                    area.draw(&PathElement::new(
                        vec![(x1 - swatch_w / 3, y), (x1, y)],
                        c.stroke_width(g.line),
                    ))
                }),
            Swatch::Block(c) => area.draw(&Rectangle::new(
                [(x0, y - half), (x1, y + half)],
                c.filled(),
            )),
            Swatch::Tick(c) => area.draw(&PathElement::new(
                vec![(x0 + swatch_w / 2, y - half), (x0 + swatch_w / 2, y + half)],
                c.stroke_width(g.line),
            )),
            Swatch::Marker(c) => area.draw(&Polygon::new(
                vec![
                    (x0 + swatch_w / 2 - half, y - half),
                    (x0 + swatch_w / 2 + half, y - half),
                    (x0 + swatch_w / 2, y + half),
                ],
                c.filled(),
            )),
        }
        .map_err(error)?;
        area.draw(&Text::new(
            label.clone(),
            (x1 + (g.font * 0.5) as i32, y),
            text_style(g.font * 0.9, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(error)?;
    }
    Ok(())
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    Line(RGBColor, u32),
    Dashed(RGBColor),
    Block(RGBColor),
    Tick(RGBColor),
    Marker(RGBColor),
}

fn draw_sections(area: &Area, data: &PlotData, g: Geometry) -> Result<Range<i32>, PlotError> {
    let mut chart = panel(area, data, g, 0.0..1.0, 0)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_axes()
        .y_labels(0)
        .x_labels(0)
        .draw()
        .map_err(error)?;
    let t = data.timeline;
    let names = t.sections();
    let plot = chart.plotting_area();
    let order: Vec<&str> = t.section_names().iter().map(String::as_str).collect();
    for s in &names {
        let index = order.iter().position(|n| *n == s.name).unwrap_or(0);
        let color = SECTION_COLORS[index % SECTION_COLORS.len()];
        plot.draw(&Rectangle::new(
            [(s.start_seconds, 0.0), (s.end_seconds, 1.0)],
            color.filled(),
        ))
        .map_err(error)?;
        let style = text_style(g.font, &INK).pos(Pos::new(HPos::Left, VPos::Center));
        let (x0, _) = chart.backend_coord(&(s.start_seconds, 0.5));
        let (x1, _) = chart.backend_coord(&(s.end_seconds, 0.5));
        let pad = (g.font * 0.4) as i32;
        let label = fit_label(area, &s.name, (x1 - x0 - 2 * pad).max(0), &style);
        let (bx, by) = area.get_base_pixel();
        let (_, y) = chart.backend_coord(&(s.start_seconds, 0.5));
        area.draw(&Text::new(label, (x0 + pad - bx, y - by), style.clone()))
            .map_err(error)?;
    }
    for s in boundaries(t) {
        plot.draw(&PathElement::new(
            vec![(s, 0.0), (s, 1.0)],
            INK.stroke_width(1),
        ))
        .map_err(error)?;
    }
    let height = rows_of(plot);
    let half = ((height.end - height.start) as f64 * 0.22) as i32;
    for e in t.events() {
        if let EventKind::Cue { .. } = e.kind {
            let (x, y) = chart.backend_coord(&(e.seconds, 1.0));
            let (bx, by) = area.get_base_pixel();
            let (x, y) = (x - bx, y - by);
            area.draw(&Polygon::new(
                vec![(x - half, y), (x + half, y), (x, y + half)],
                INK.filled(),
            ))
            .map_err(error)?;
        }
    }
    legend(
        area,
        g,
        "Sections",
        &[(Swatch::Marker(INK), "cue taken".into())],
    )?;
    Ok(height)
}

/// `text` cut to fit `max_px` (with an ellipsis), or nothing if even that does not fit.
fn fit_label(area: &Area, text: &str, max_px: i32, style: &TextStyle) -> String {
    let fits = |s: &str| {
        area.estimate_text_size(s, style)
            .is_ok_and(|(w, _)| w as i32 <= max_px)
    };
    if fits(text) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    (1..chars.len())
        .rev()
        .map(|n| chars[..n].iter().collect::<String>() + "…")
        .find(|s| fits(s))
        .unwrap_or_default()
}

fn draw_participants(area: &Area, data: &PlotData, g: Geometry) -> Result<Range<i32>, PlotError> {
    let t = data.timeline;
    // who is present, step by step
    let mut steps = vec![(0.0, 0i64)];
    let mut present = 0i64;
    for e in t.events() {
        let delta = match e.kind {
            EventKind::Join { .. } => 1,
            EventKind::Leave { .. } => -1,
            _ => continue,
        };
        present += delta;
        steps.push((e.seconds, present));
    }
    let top = steps.iter().map(|s| s.1).max().unwrap_or(0).max(1) as f64 * 1.15;
    let mut chart = panel(area, data, g, 0.0..top, 0)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(BACKGROUND)
        .bold_line_style(GRID)
        .y_labels(3)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(text_style(g.font * 0.85, &INK))
        .x_labels(0)
        .draw()
        .map_err(error)?;
    axis_title(area, g, "present")?;
    let mut outline = Vec::with_capacity(steps.len() * 2 + 2);
    for (i, &(time, count)) in steps.iter().enumerate() {
        if i > 0 {
            outline.push((time, steps[i - 1].1 as f64));
        }
        outline.push((time, count as f64));
    }
    outline.push((data.duration_secs, present as f64));
    let mut fill = outline.clone();
    fill.push((data.duration_secs, 0.0));
    fill.push((0.0, 0.0));
    let plot = chart.plotting_area();
    time_grid(plot, data, 0.0, top)?;
    plot.draw(&Polygon::new(fill, PRESENT.filled()))
        .map_err(error)?;
    plot.draw(&PathElement::new(outline, INK.mix(0.6).stroke_width(1)))
        .map_err(error)?;
    for e in t.events() {
        let (color, from, to) = match e.kind {
            EventKind::Join { .. } => (JOIN, 0.0, 0.3),
            EventKind::Leave { .. } => (LEAVE, 0.7, 1.0),
            EventKind::Refused { .. } => (REFUSED, 0.4, 0.6),
            _ => continue,
        };
        plot.draw(&PathElement::new(
            vec![(e.seconds, from * top), (e.seconds, to * top)],
            color.stroke_width(g.line),
        ))
        .map_err(error)?;
    }
    draw_boundaries(plot, t, top, 0.0, INK.mix(0.5))?;
    legend(
        area,
        g,
        "Who is in",
        &[
            (Swatch::Block(PRESENT), "present".into()),
            (Swatch::Tick(JOIN), "join".into()),
            (Swatch::Tick(LEAVE), "leave".into()),
            (Swatch::Tick(REFUSED), "refused".into()),
        ],
    )?;
    Ok(rows_of(plot))
}

fn draw_boundaries<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    plot: &DrawingArea<DB, CT>,
    t: &Timeline,
    top: f64,
    bottom: f64,
    color: RGBAColor,
) -> Result<(), PlotError> {
    for s in boundaries(t) {
        plot.draw(&PathElement::new(
            vec![(s, bottom), (s, top)],
            color.stroke_width(1),
        ))
        .map_err(error)?;
    }
    Ok(())
}

/// Light vertical lines at the time ticks, from `bottom` to `top` in the panel's units.
fn time_grid<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    plot: &DrawingArea<DB, CT>,
    data: &PlotData,
    bottom: f64,
    top: f64,
) -> Result<(), PlotError> {
    for t in time_ticks(data.duration_secs).into_iter().skip(1) {
        plot.draw(&PathElement::new(
            vec![(t, bottom), (t, top)],
            GRID.stroke_width(1),
        ))
        .map_err(error)?;
    }
    Ok(())
}

/// The time axis's labels (m:ss) and title under the bottom panel.
fn time_labels<Y: Ranged<ValueType = f64>>(
    area: &Area,
    chart: &ChartContext<BitMapBackend, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    data: &PlotData,
    g: Geometry,
) -> Result<(), PlotError> {
    let (bx, by) = area.get_base_pixel();
    let y_range = chart.y_range();
    let tick = (g.font * 0.4) as i32;
    let style = text_style(g.font * 0.85, &INK).pos(Pos::new(HPos::Center, VPos::Top));
    for t in time_ticks(data.duration_secs) {
        let (x, y) = chart.backend_coord(&(t, y_range.start));
        let (x, y) = (x - bx, y - by);
        area.draw(&PathElement::new(
            vec![(x, y), (x, y + tick)],
            INK.stroke_width(1),
        ))
        .map_err(error)?;
        area.draw(&Text::new(clock(t), (x, y + tick + 2), style.clone()))
            .map_err(error)?;
    }
    let (x0, y) = chart.backend_coord(&(0.0, y_range.start));
    let (x1, _) = chart.backend_coord(&(data.duration_secs, y_range.start));
    area.draw(&Text::new(
        "time (m:ss)".to_string(),
        ((x0 + x1) / 2 - bx, y - by + tick + (g.font * 1.6) as i32),
        text_style(g.font * 0.85, &INK).pos(Pos::new(HPos::Center, VPos::Top)),
    ))
    .map_err(error)
}

fn ramp(x: f32) -> RGBColor {
    let x = x.clamp(0.0, 1.0) * (RAMP.len() - 1) as f32;
    let i = (x.floor() as usize).min(RAMP.len() - 2);
    let f = x - i as f32;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    let mix = |p: u8, q: u8| (p as f32 + (q as f32 - p as f32) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn frequency_label(hz: f64) -> String {
    if hz >= 1000.0 {
        format!("{}k", hz / 1000.0)
    } else {
        format!("{hz}")
    }
}

fn draw_spectrogram(
    area: &Area,
    data: &PlotData,
    g: Geometry,
) -> Result<(Range<i32>, Range<i32>), PlotError> {
    let max_hz = data.max_hz as f64;
    let y = (MIN_HZ as f64..max_hz).log_scale();
    let mut chart = panel(area, data, g, y, 0)?;
    let (x0, y_top) = chart.backend_coord(&(0.0, max_hz));
    let (x1, y_bottom) = chart.backend_coord(&(data.duration_secs, MIN_HZ as f64));
    let top_db = data
        .spectrogram
        .iter()
        .flat_map(|c| c.iter())
        .fold(FLOOR_DB, |m, &v| m.max(v));
    // the scale's top: the loudest cell, or low enough that near-silence stays dark
    let top_db = ((top_db / 10.0).ceil() * 10.0).max(SPECTROGRAM_MIN_TOP_DB);
    paint_spectrogram(area, data, (x0..x1, y_top..y_bottom), top_db)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .x_labels(0)
        .draw()
        .map_err(error)?;
    axis_title(area, g, "frequency (Hz)")?;
    for hz in [50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4] {
        if hz <= max_hz {
            let (x, y) = chart.backend_coord(&(0.0, hz));
            y_tick(area, g, (x, y), &frequency_label(hz))?;
        }
    }
    draw_boundaries(
        chart.plotting_area(),
        data.timeline,
        max_hz,
        MIN_HZ as f64,
        WHITE.mix(0.7),
    )?;
    color_bar(area, g, top_db)?;
    Ok((rows_of(chart.plotting_area()), x0..x1))
}

/// A tick and its label left of the plotting area, at absolute pixel `at`.
fn y_tick(area: &Area, g: Geometry, at: (i32, i32), label: &str) -> Result<(), PlotError> {
    let (bx, by) = area.get_base_pixel();
    let (x, y) = (at.0 - bx, at.1 - by);
    let tick = (g.font * 0.4) as i32;
    area.draw(&PathElement::new(
        vec![(x - tick, y), (x, y)],
        INK.stroke_width(1),
    ))
    .map_err(error)?;
    area.draw(&Text::new(
        label.to_string(),
        (x - tick - (g.font * 0.3) as i32, y),
        text_style(g.font * 0.85, &INK).pos(Pos::new(HPos::Right, VPos::Center)),
    ))
    .map_err(error)
}

/// Paints the spectrogram pixel by pixel into the plotting rectangle (absolute pixels).
fn paint_spectrogram(
    area: &Area,
    data: &PlotData,
    (xs, ys): (Range<i32>, Range<i32>),
    top_db: f32,
) -> Result<(), PlotError> {
    let columns = data.spectrogram.len().max(1);
    let width = (xs.end - xs.start).max(1) as usize;
    let height = (ys.end - ys.start).max(1) as f32;
    let (base_x, base_y) = area.get_base_pixel();
    for py in ys.clone() {
        // the row's place between the lowest band (0) and the highest (BANDS - 1)
        let up = 1.0 - (py - ys.start) as f32 / height;
        let band = (up * BANDS as f32 - 0.5).clamp(0.0, (BANDS - 1) as f32);
        let (lo, frac) = (band.floor() as usize, band.fract());
        let hi = (lo + 1).min(BANDS - 1);
        for px in xs.clone() {
            let column = ((px - xs.start) as usize * columns / width).min(columns - 1);
            let c = &data.spectrogram[column];
            let db = c[lo] * (1.0 - frac) + c[hi] * frac;
            let color = ramp((db - (top_db - SPECTROGRAM_RANGE_DB)) / SPECTROGRAM_RANGE_DB);
            area.draw_pixel((px - base_x, py - base_y), &color)
                .map_err(error)?;
        }
    }
    Ok(())
}

/// The spectrogram's colour scale in the right margin.
fn color_bar(area: &Area, g: Geometry, top_db: f32) -> Result<(), PlotError> {
    legend(area, g, "Spectrogram", &[])?;
    let (w, h) = area.dim_in_pixel();
    let x = (w - g.right) as i32 + (g.font * 1.2) as i32;
    let bar_w = (g.font * 1.2) as i32;
    let top = g.gap as i32 + (g.font * 2.4) as i32;
    let bottom = h as i32 - (g.font * 1.5) as i32;
    let span = (bottom - top).max(1);
    for y in top..bottom {
        let level = 1.0 - (y - top) as f32 / span as f32;
        area.draw(&PathElement::new(vec![(x, y), (x + bar_w, y)], ramp(level)))
            .map_err(error)?;
    }
    let style = text_style(g.font * 0.85, &INK).pos(Pos::new(HPos::Left, VPos::Center));
    let steps = 4;
    for i in 0..=steps {
        let db = top_db - SPECTROGRAM_RANGE_DB * i as f32 / steps as f32;
        let y = top + span * i / steps;
        area.draw(&Text::new(
            format!("{db:.0} dB"),
            (x + bar_w + (g.font * 0.5) as i32, y),
            style.clone(),
        ))
        .map_err(error)?;
    }
    Ok(())
}

fn draw_loudness(area: &Area, data: &PlotData, g: Geometry) -> Result<Range<i32>, PlotError> {
    let low = LOUDNESS_MIN_LUFS as f64;
    let mut chart = panel(area, data, g, low..0.0, 0)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(BACKGROUND)
        .bold_line_style(GRID)
        .y_labels(7)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(text_style(g.font * 0.85, &INK))
        .x_labels(0)
        .draw()
        .map_err(error)?;
    axis_title(area, g, "LUFS")?;
    let columns = data.loudness.len().max(1);
    let secs = |c: usize| (c as f64 + 0.5) / columns as f64 * data.duration_secs;
    let clamp = |v: f32| v.clamp(LOUDNESS_MIN_LUFS, 0.0) as f64;
    let plot = chart.plotting_area();
    time_grid(plot, data, low, 0.0)?;
    for (c, &(lo, hi, _)) in data.loudness.iter().enumerate() {
        if hi > LOUDNESS_FLOOR_LUFS {
            plot.draw(&PathElement::new(
                vec![(secs(c), clamp(lo)), (secs(c), clamp(hi))],
                MOMENTARY.stroke_width(1),
            ))
            .map_err(error)?;
        }
    }
    let short: Vec<(f64, f64)> = data
        .loudness
        .iter()
        .enumerate()
        .map(|(c, &(_, _, s))| (secs(c), clamp(s)))
        .collect();
    plot.draw(&PathElement::new(short, SHORT_TERM.stroke_width(g.line)))
        .map_err(error)?;
    let mut entries = vec![
        (Swatch::Block(MOMENTARY), "momentary (0.4 s)".into()),
        (Swatch::Line(SHORT_TERM, g.line), "short-term (3 s)".into()),
    ];
    if let Some(target) = data.target_lufs {
        let target = clamp(target);
        let dash = data.duration_secs / 120.0;
        let mut t = 0.0;
        while t < data.duration_secs {
            plot.draw(&PathElement::new(
                vec![(t, target), ((t + dash).min(data.duration_secs), target)],
                INK.mix(0.7).stroke_width(1),
            ))
            .map_err(error)?;
            t += 2.0 * dash;
        }
        entries.push((Swatch::Dashed(INK), format!("target {target:.0} LUFS")));
    }
    draw_boundaries(plot, data.timeline, 0.0, low, INK.mix(0.5))?;
    legend(area, g, "Loudness (BS.1770)", &entries)?;
    Ok(rows_of(plot))
}

fn draw_mood(
    area: &Area,
    data: &PlotData,
    g: Geometry,
    axis: u32,
) -> Result<(Range<i32>, MoodColors), PlotError> {
    let mut chart = panel(area, data, g, 0.0..1.0, axis)?;
    chart
        .configure_mesh()
        .light_line_style(BACKGROUND)
        .bold_line_style(GRID)
        .y_labels(5)
        .y_label_formatter(&|v| match v {
            v if *v <= 0.0 => "min".into(),
            v if *v >= 1.0 => "max".into(),
            v => format!("{v:.2}"),
        })
        .disable_x_mesh()
        .x_labels(0)
        .label_style(text_style(g.font * 0.85, &INK))
        .draw()
        .map_err(error)?;
    axis_title(area, g, "mood")?;
    let t = data.timeline;
    let mood = t.mood();
    let plot = chart.plotting_area();
    time_grid(plot, data, 0.0, 1.0)?;
    draw_boundaries(plot, t, 1.0, 0.0, INK.mix(0.5))?;
    time_labels(area, &chart, data, g)?;
    let palette = mood_colors(t.dimensions().iter().map(|d| d.name.clone()));
    let mut colors = Vec::new();
    let mut entries = Vec::new();
    for (d, (dim, values)) in t.dimensions().iter().zip(&mood.values).enumerate() {
        let color = palette[d];
        let span = (dim.max - dim.min).max(1e-9);
        let points: Vec<(f64, f64)> = mood
            .samples
            .iter()
            .zip(values)
            .filter(|(_, v)| v.is_finite())
            .map(|(&s, &v)| (t.seconds(s), ((v - dim.min) / span).clamp(0.0, 1.0) as f64))
            .collect();
        plot.draw(&PathElement::new(points, color.stroke_width(g.line)))
            .map_err(error)?;
        colors.push((dim.name.clone(), [color.0, color.1, color.2]));
        entries.push((
            Swatch::Line(color, g.line),
            format!("{} ({}…{})", dim.name, dim.min, dim.max),
        ));
    }
    legend(area, g, "Communal mood", &entries)?;
    Ok((rows_of(plot), colors))
}
